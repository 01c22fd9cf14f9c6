"""Linear algebra: matmul and its special cases (mm, bmm, dot, mv, outer), einsum, addmm, tensordot.

Everything runs on two backend primitives, ``backend.matmul`` (batched, broadcasting, float32
accumulation for float16/bfloat16) and ``backend.einsum``. The backward of a product is again a
product (``grad @ b.mT``, or an einsum of the grad with the other operands), written with these
differentiable ops, so second derivatives come for free.

Shapes follow PyTorch's ``matmul`` rules: a 1-d operand on the left is a row vector (1, k), on the
right a column vector (k, 1), and the added dimension is dropped from the result; batch dimensions
(all but the last two) broadcast. Operands must share a dtype (no promotion, as in PyTorch).

Deliberate differences from PyTorch: einsum always returns new storage (PyTorch may return a view
for one-operand equations); tensordot also takes ``dims=[1, 0]`` (one dim of each, as NumPy does).

Example::

    >>> a, b = gradient.randn(2, 1, 3, 4), gradient.randn(5, 4, 2)
    >>> (a @ b).shape
    gradient.Size([2, 5, 3, 2])
    >>> gradient.einsum("bij,bjk->bik", gradient.randn(2, 3, 4), gradient.randn(2, 4, 5)).shape
    gradient.Size([2, 3, 5])
"""

from __future__ import annotations

import math

from ..autograd import autocast_state as _autocast
from ..autograd.function import ArrayFunction
from ..dtypes import bfloat16, bool_, float16, float32, from_numpy_dtype
from ..errors import ArgumentTypeError, ArgumentValueError, DTypeError, ShapeError
from ..tensor import Tensor
from . import sparse as _sparse
from .argument_errors import as_int
from .creation import eye
from .shape import expand, reshape, wrap_dim

__all__ = ["matmul", "mm", "bmm", "dot", "vdot", "mv", "outer", "ger", "einsum", "addmm",
           "baddbmm", "addmv", "tensordot", "cdist"]
TENSOR_METHODS = ("matmul", "mm", "bmm", "dot", "vdot", "mv", "outer", "ger", "addmm", "baddbmm",
                  "addmv")


# ---------------------------------------------------------------------- checks
def _check_operands(name: str, *tensors) -> None:
    """Tensors of one dtype that a product supports (PyTorch does not promote in matmul)."""
    for t in tensors:
        if not isinstance(t, Tensor):
            raise ArgumentTypeError(f"{name}: expected Tensor operands, got {type(t).__name__}")
    first = tensors[0].dtype
    for t in tensors[1:]:
        if t.dtype is not first:
            raise DTypeError(f"{name}: expected both operands to have the same dtype, got {first.name} and "
                             f"{t.dtype.name}; convert one with .to(dtype)")
    if first is bool_:
        raise DTypeError(f"{name}: bool tensors are not supported; convert them with .float() or .long()")


def _check_ndim(name: str, t: Tensor, ndim: int, what: str) -> None:
    if t.ndim != ndim:
        raise ShapeError(f"{name}: expected {what} to be {ndim}-d, got shape {tuple(t.shape)}")


def _broadcast_batch(name: str, a_shape: tuple, b_shape: tuple) -> tuple:
    """The broadcast of the batch dimensions (everything but the matrix dims) of two operands."""
    a_batch, b_batch = tuple(a_shape[:-2]), tuple(b_shape[:-2])
    n = max(len(a_batch), len(b_batch))
    a_pad = (1,) * (n - len(a_batch)) + a_batch
    b_pad = (1,) * (n - len(b_batch)) + b_batch
    out = []
    for x, y in zip(a_pad, b_pad):
        if x != y and x != 1 and y != 1:
            raise ShapeError(f"{name}: the batch dimensions of shapes {tuple(a_shape)} and "
                             f"{tuple(b_shape)} do not broadcast: {a_batch} and {b_batch}")
        out.append(y if x == 1 else x)
    return tuple(out)


# ---------------------------------------------------------------------- matmul
class Matmul(ArrayFunction):
    """``a @ b`` with PyTorch's rules for 1-d operands and broadcast batch dimensions."""

    @staticmethod
    def forward(ctx, a, b, out_shape):
        backend = ctx.backend
        ctx.save_for_backward(a, b)
        # 1-d operands become matrices: (k,) is (1, k) on the left and (k, 1) on the right; the
        # added dimension is dropped again by reshaping to ``out_shape``.
        a2 = a if a.ndim > 1 else backend.reshape(a, (1,) + a.shape)
        b2 = b if b.ndim > 1 else backend.reshape(b, b.shape + (1,))
        if a2.ndim > 2 and b2.ndim == 2:
            # a stack of matrices times one matrix is one (rows, k) @ (k, m) GEMM: several times
            # faster than a GEMM per matrix of the stack
            a2 = backend.reshape(a2, (math.prod(a2.shape[:-1]), a2.shape[-1]))
        out = backend.matmul(a2, b2)
        return backend.reshape(out, out_shape) if out.shape != out_shape else out

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        a2 = a if a.ndim > 1 else reshape(a, (1,) + tuple(a.shape))
        b2 = b if b.ndim > 1 else reshape(b, tuple(b.shape) + (1,))
        # the grad with the dimensions that 1-d operands dropped put back: batch + (n, m)
        g_shape = tuple(grad.shape[:grad.ndim - (a.ndim > 1) - (b.ndim > 1)])
        g_shape += (a2.shape[-2], b2.shape[-1])
        g = reshape(grad, g_shape)
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = matmul(g, b2.mT)      # batch + (n, k); the engine sums the batch dims away
            if a.ndim == 1:                # drop the row dimension: batch + (k,)
                grad_a = reshape(grad_a, tuple(grad_a.shape[:-2]) + (grad_a.shape[-1],))
        if ctx.needs_input_grad[1] and a2.ndim > 2 and b.ndim == 2:
            # b was shared by the whole stack: its gradient sums over it, in one GEMM
            rows = math.prod(a2.shape[:-1])
            grad_b = matmul(reshape(a2, (rows, a2.shape[-1])).mT, reshape(g, (rows, g.shape[-1])))
        elif ctx.needs_input_grad[1]:
            grad_b = matmul(a2.mT, g)      # batch + (k, m)
            if b.ndim == 1:                # drop the column dimension: batch + (k,)
                grad_b = reshape(grad_b, tuple(grad_b.shape[:-1]))
        return grad_a, grad_b, None


def matmul(input: Tensor, other: Tensor) -> Tensor:
    """Matrix product with PyTorch's rules: dot, matrix-vector, matrix-matrix, batched, broadcast.

    ``gradient.matmul(gradient.randn(2, 1, 3, 4), gradient.randn(5, 4, 2)).shape == (2, 5, 3, 2)``
    """
    if _sparse.is_sparse(input) or _sparse.is_sparse(other):
        return _sparse.matmul(input, other)
    input, other = _autocast.to_lower_precision(input, other)  # autocast: runs in bf16/fp16
    return _matmul("matmul", input, other)


def _matmul(name: str, input: Tensor, other: Tensor) -> Tensor:
    """:func:`matmul`, with errors that name ``name`` (mm, dot ... are matmul after their checks)."""
    _check_operands(name, input, other)
    a_shape, b_shape = tuple(input.shape), tuple(other.shape)
    if input.ndim == 0 or other.ndim == 0:
        raise ShapeError(f"{name}: both arguments need to be at least 1-d, got shapes {a_shape} and "
                         f"{b_shape}; use * to multiply by a scalar")
    k_a = a_shape[-1]
    k_b = b_shape[-2] if other.ndim > 1 else b_shape[0]
    if k_a != k_b:
        raise ShapeError(f"{name}: shapes {a_shape} and {b_shape} do not align: {k_a} != {k_b}")
    out_shape = _broadcast_batch(name, a_shape, b_shape)
    if input.ndim > 1:
        out_shape += (a_shape[-2],)
    if other.ndim > 1:
        out_shape += (b_shape[-1],)
    return Matmul.apply(input, other, out_shape)


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    """Product of two matrices (2-d only, no broadcasting): ``gradient.mm(a, b)``. A sparse
    ``input`` (:mod:`gradient.sparse`) takes :func:`gradient.sparse.mm`."""
    if _sparse.is_sparse(input) or _sparse.is_sparse(mat2):
        return _sparse.matmul(input, mat2)
    input, mat2 = _autocast.to_lower_precision(input, mat2)  # autocast: runs in bf16/fp16
    _check_operands("mm", input, mat2)
    _check_ndim("mm", input, 2, "input")
    _check_ndim("mm", mat2, 2, "mat2")
    return _matmul("mm", input, mat2)


def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    """Batched product of (b, n, k) and (b, k, m) tensors, no broadcasting: ``gradient.bmm(a, b)``."""
    input, mat2 = _autocast.to_lower_precision(input, mat2)  # autocast: runs in bf16/fp16
    _check_operands("bmm", input, mat2)
    _check_ndim("bmm", input, 3, "input")
    _check_ndim("bmm", mat2, 3, "mat2")
    if input.shape[0] != mat2.shape[0]:
        raise ShapeError(f"bmm: batch sizes of shapes {tuple(input.shape)} and {tuple(mat2.shape)} "
                         f"differ: {input.shape[0]} != {mat2.shape[0]}")
    return _matmul("bmm", input, mat2)


def _check_vectors(name: str, input: Tensor, other: Tensor) -> None:
    _check_operands(name, input, other)
    if input.ndim != 1 or other.ndim != 1:
        raise ShapeError(f"{name}: expected two 1-d tensors, got shapes {tuple(input.shape)} and "
                         f"{tuple(other.shape)}")


def dot(input: Tensor, tensor: Tensor) -> Tensor:
    """Inner product of two 1-d tensors of the same length (a 0-d result): ``gradient.dot(a, b)``."""
    _check_vectors("dot", input, tensor)
    return _matmul("dot", input, tensor)


def vdot(input: Tensor, other: Tensor) -> Tensor:
    """Like :func:`dot`; the complex conjugation of PyTorch's vdot is moot for real dtypes.

    ``gradient.vdot(gradient.tensor([1.0, 2.0]), gradient.tensor([3.0, 4.0]))`` is ``tensor(11.)``.
    """
    _check_vectors("vdot", input, other)
    return _matmul("vdot", input, other)


def mv(input: Tensor, vec: Tensor) -> Tensor:
    """Matrix-vector product of an (n, k) matrix and a (k,) vector: ``gradient.mv(m, v)``."""
    if _sparse.is_sparse(input):
        _check_ndim("mv", vec, 1, "vec")
        return _sparse.sparse_mm(input, vec)
    _check_operands("mv", input, vec)
    _check_ndim("mv", input, 2, "input")
    _check_ndim("mv", vec, 1, "vec")
    return _matmul("mv", input, vec)


def outer(input: Tensor, vec2: Tensor) -> Tensor:
    """Outer product of two 1-d tensors, ``out[i, j] = input[i] * vec2[j]``; promotes dtypes like *.

    ``gradient.outer(gradient.randn(3), gradient.randn(4)).shape == (3, 4)``
    """
    for t, what in ((input, "input"), (vec2, "vec2")):
        if not isinstance(t, Tensor):
            raise ArgumentTypeError(f"outer: expected Tensor operands, got {type(t).__name__}")
        if t.ndim != 1:
            raise ShapeError(f"outer: expected {what} to be 1-d, got shape {tuple(t.shape)}")
    return reshape(input, (input.shape[0], 1)) * vec2


ger = outer


# ---------------------------------------------------------------------- addmm family
class AddMatmul(ArrayFunction):
    """``beta * input + alpha * (a @ b)`` in one node, for 2-d or 3-d ``a`` and ``b``.

    As in PyTorch, ``input`` is ignored when ``beta == 0`` (its nan and inf do not propagate),
    though it still gets a (zero) gradient.
    """

    @staticmethod
    def forward(ctx, input, a, b, beta, alpha):
        backend = ctx.backend
        ctx.save_for_backward(a, b)
        ctx.beta, ctx.alpha = beta, alpha
        dtype = from_numpy_dtype(a.dtype)
        # float16/bfloat16: the whole expression in float32, rounded once at the end (as PyTorch);
        # rounding the product, each scaled term and the sum apart is off by an ulp or more
        compute = float32 if dtype in (float16, bfloat16) else dtype
        a, b, input = (backend.cast(t, compute) for t in (a, b, input))
        out = backend.matmul(a, b)
        if alpha != 1:
            out = backend.binary("mul", out, backend.full((), alpha, compute))
        if beta != 0:
            scaled = input if beta == 1 else backend.binary("mul", input, backend.full((), beta, compute))
            out = backend.binary("add", scaled, out)
        return backend.cast(out, dtype)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        needs = ctx.needs_input_grad
        grad_input = grad_a = grad_b = None
        if needs[0]:
            grad_input = grad if ctx.beta == 1 else grad * ctx.beta   # summed to input's shape
        g = grad if ctx.alpha == 1 else grad * ctx.alpha
        if needs[1]:
            grad_a = matmul(g, b.mT)
        if needs[2]:
            grad_b = matmul(a.mT, g)
        return grad_input, grad_a, grad_b, None, None


def _add_matmul(name: str, input: Tensor, a: Tensor, b: Tensor, beta, alpha) -> Tensor:
    _check_operands(name, input, a, b)
    if a.shape[-1] != b.shape[-2]:
        raise ShapeError(f"{name}: shapes {tuple(a.shape)} and {tuple(b.shape)} do not align: "
                         f"{a.shape[-1]} != {b.shape[-2]}")
    out_shape = tuple(a.shape[:-1]) + (b.shape[-1],)
    # input must broadcast to the product's shape (it cannot make the result bigger)
    in_shape = tuple(input.shape)
    lead = len(out_shape) - len(in_shape)
    if lead < 0 or any(s != 1 and s != o for s, o in zip(in_shape, out_shape[lead:])):
        raise ShapeError(f"{name}: input of shape {in_shape} does not broadcast to the shape of the "
                         f"product, {out_shape}")
    if not a.dtype.is_floating_point and (isinstance(beta, float) or isinstance(alpha, float)):
        raise DTypeError(f"{name}: float beta and alpha need floating tensors, got {a.dtype.name}")
    return AddMatmul.apply(input, a, b, beta, alpha)


def addmm(input: Tensor, mat1: Tensor, mat2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * (mat1 @ mat2)`` for matrices; ``input`` broadcasts.

    ``gradient.addmm(bias, x, w.T)`` is a linear layer. A sparse ``mat1`` takes
    :func:`gradient.sparse.mm` (:func:`gradient.sparse.addmm`).
    """
    if _sparse.is_sparse(mat1):
        product = _sparse.sparse_mm(mat1, mat2)
        product = product if alpha == 1 else product * alpha
        return product if beta == 0 else (input if beta == 1 else input * beta) + product
    input, mat1, mat2 = _autocast.to_lower_precision(input, mat1, mat2)  # autocast: bf16/fp16
    _check_operands("addmm", input, mat1, mat2)
    _check_ndim("addmm", mat1, 2, "mat1")
    _check_ndim("addmm", mat2, 2, "mat2")
    return _add_matmul("addmm", input, mat1, mat2, beta, alpha)


def baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * bmm(batch1, batch2)``; ``input`` broadcasts to (b, n, m).

    ``gradient.baddbmm(scores, q, k.mT, beta=0, alpha=d ** -0.5)`` scales attention scores.
    """
    input, batch1, batch2 = _autocast.to_lower_precision(input, batch1, batch2)  # autocast: bf16/fp16
    _check_operands("baddbmm", input, batch1, batch2)
    _check_ndim("baddbmm", batch1, 3, "batch1")
    _check_ndim("baddbmm", batch2, 3, "batch2")
    if batch1.shape[0] != batch2.shape[0]:
        raise ShapeError(f"baddbmm: batch sizes of shapes {tuple(batch1.shape)} and "
                         f"{tuple(batch2.shape)} differ: {batch1.shape[0]} != {batch2.shape[0]}")
    return _add_matmul("baddbmm", input, batch1, batch2, beta, alpha)


def addmv(input: Tensor, mat: Tensor, vec: Tensor, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * (mat @ vec)`` for an (n, k) matrix and a (k,) vector.

    ``gradient.addmv(bias, w, x)`` is a linear layer on one vector. In float16/bfloat16 the sum is
    computed in float32 and rounded once, as in addmm; PyTorch's addmv may differ by an ulp.
    """
    _check_operands("addmv", input, mat, vec)
    _check_ndim("addmv", mat, 2, "mat")
    _check_ndim("addmv", vec, 1, "vec")
    if input.ndim > 1:
        raise ShapeError(f"addmv: expected input to be 0-d or 1-d, got shape {tuple(input.shape)}")
    n, k = mat.shape
    if vec.shape[0] != k:
        raise ShapeError(f"addmv: shapes {tuple(mat.shape)} and {tuple(vec.shape)} do not align: "
                         f"{k} != {vec.shape[0]}")
    if input.ndim == 1 and input.shape[0] not in (1, n):
        raise ShapeError(f"addmv: input of shape {tuple(input.shape)} does not broadcast to the shape "
                         f"of the product, ({n},)")
    # as a matrix product with a (k, 1) column: input (n,) becomes (n, 1), a 0-d one (1,)
    out = _add_matmul("addmv", reshape(input, tuple(input.shape) + (1,)), mat,
                      reshape(vec, (vec.shape[0], 1)), beta, alpha)
    return reshape(out, (mat.shape[0],))


# ---------------------------------------------------------------------- einsum
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _parse_einsum(equation: str, shapes: list) -> tuple[list[str], str]:
    """The equation with '...' replaced by letters and the implicit output made explicit.

    Returns (input subscripts per operand, output subscripts), all plain letters.
    """
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    inputs = lhs.split(",")
    if len(inputs) != len(shapes):
        few = "fewer" if len(shapes) < len(inputs) else "more"
        raise ArgumentValueError(
            f"einsum: {few} operands ({len(shapes)}) were given than the equation "
            f"{equation!r} specifies ({len(inputs)})")
    for part in inputs + [rhs]:
        bad = set(part.replace("...", "")) - set(_LETTERS)
        if bad or part.count("...") > 1:
            what = f"invalid subscript {sorted(bad)[0]!r}" if bad else "more than one '...'"
            raise ArgumentValueError(
                f"einsum: {what} in {equation!r}; subscripts are letters a-z, A-Z and "
                "at most one '...' per operand")
    used = set(eq) & set(_LETTERS)
    spare = [c for c in _LETTERS if c not in used]

    # '...' stands for the leading dims of each operand not named by letters; they align from the
    # right (and broadcast) across operands, so they get the same letters right-aligned.
    n_ell = 0
    for i, (sub, shape) in enumerate(zip(inputs, shapes)):
        named = len(sub.replace("...", ""))
        if "..." in sub:
            if named > len(shape):
                raise ShapeError(f"einsum: operand {i} has {len(shape)} dimensions, fewer than the "
                                 f"{named} subscripts of {sub!r}")
            n_ell = max(n_ell, len(shape) - named)
        elif named != len(shape):
            raise ShapeError(f"einsum: the number of subscripts in {sub!r} ({named}) does not match "
                             f"the number of dimensions ({len(shape)}) of operand {i}, and no '...' "
                             "was given")
    if n_ell > len(spare):
        raise ArgumentValueError(
            f"einsum: too many dimensions in {equation!r} to name them all with letters")
    ell = "".join(spare[:n_ell])
    for i, (sub, shape) in enumerate(zip(inputs, shapes)):
        if "..." in sub:
            k = len(shape) - len(sub.replace("...", ""))
            inputs[i] = sub.replace("...", ell[n_ell - k:])

    if arrow:
        if "..." in rhs:
            rhs = rhs.replace("...", ell)
        # without '...' in the output, the dims it stands for are summed, as in PyTorch
        seen = set()
        all_inputs = set("".join(inputs))
        for c in rhs:
            if c in seen:
                raise ArgumentValueError(
                    f"einsum: output subscript {c!r} appears more than once in "
                    f"{equation!r}")
            if c not in all_inputs:
                raise ArgumentValueError(
                    f"einsum: output subscript {c!r} of {equation!r} does not appear "
                    "in any input")
            seen.add(c)
    else:
        # implicit output: the '...' dims, then the letters used exactly once, alphabetically
        counts = {}
        for c in "".join(inputs):
            counts[c] = counts.get(c, 0) + 1
        rhs = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    return inputs, rhs


class Einsum(ArrayFunction):
    """Einstein summation on an equation of plain letters whose sizes agree (see :func:`einsum`)."""

    @staticmethod
    def forward(ctx, equation, *operands):
        ctx.equation = equation
        ctx.save_for_backward(*operands)
        out = ctx.backend.einsum(equation, *operands)
        if len(operands) == 1 and getattr(out, "base", None) is not None:
            out = out.copy()  # NumPy returns views for 'ij->ji', 'ii->i': give the result its own storage
        return out

    @staticmethod
    def backward(ctx, grad):
        operands = ctx.saved_tensors
        lhs, out_sub = ctx.equation.split("->")
        subs = lhs.split(",")
        grads = [None]
        for k, x in enumerate(operands):
            if not ctx.needs_input_grad[k + 1]:
                grads.append(None)
                continue
            others = [s for j, s in enumerate(subs) if j != k]
            other_ops = [o for j, o in enumerate(operands) if j != k]
            grads.append(_einsum_grad(grad, out_sub, others, other_ops, subs[k], tuple(x.shape)))
        return tuple(grads)


def _einsum_grad(grad: Tensor, out_sub: str, other_subs: list, others: list, sub: str,
                 shape: tuple) -> Tensor:
    """The gradient of one einsum operand with subscripts ``sub`` and shape ``shape``.

    It is the einsum of the output grad with the other operands, onto the operand's letters:
    letters found nowhere else (summed out of this operand alone) are broadcast back, and
    repeated letters (a diagonal, as in 'ii->i') are scattered back onto the diagonal.
    """
    sizes = dict(zip(sub, shape))
    unique = "".join(dict.fromkeys(sub))                      # letters of sub, first occurrences
    available = set(out_sub).union(*other_subs)
    kept = "".join(c for c in unique if c in available)
    terms = [out_sub] + other_subs
    if len(terms) == 1 and out_sub == kept:
        g = grad
    else:
        g = einsum(",".join(terms) + "->" + kept, grad, *others)
    if kept != unique:
        # letters summed out of this operand alone: the output does not depend on where along them
        # an element sits, so the grad is the same all along them
        g = reshape(g, tuple(sizes[c] if c in available else 1 for c in unique))
        g = expand(g, tuple(sizes[c] for c in unique))
    if unique != sub:
        # a repeated letter reads a diagonal: each repeat gets a fresh letter tied to the first one
        # by an identity matrix, which puts the grad on the diagonal and zeros elsewhere
        spare = iter(c for c in _LETTERS if c not in set(out_sub).union(sub, *other_subs))
        full, eyes, eye_subs, seen = "", [], [], set()
        for c in sub:
            if c in seen:
                fresh = next(spare, None)
                if fresh is None:
                    raise ArgumentValueError(
                        "einsum: too many subscripts to differentiate a repeated one")
                eyes.append(eye(sizes[c], dtype=grad.dtype, device=grad.device))
                eye_subs.append(c + fresh)
                full += fresh
            else:
                full += c
                seen.add(c)
        g = einsum(",".join([unique] + eye_subs) + "->" + full, g, *eyes)
    return g


def einsum(equation: str, *operands) -> Tensor:
    """Einstein summation, with PyTorch's signature and rules.

    ``einsum("bij,bjk->bik", a, b)`` is a batched matmul; operands may also be passed as one list,
    or each followed by its subscripts as a list of integers (0-51, ``...`` as Ellipsis):
    ``einsum(a, [0, 1], b, [1, 2], [0, 2])``.
    Supports '...' (broadcasting dims), the implicit output (``"ij,jk"``: letters used once, sorted),
    repeated letters within an operand (``"ii->i"`` is the diagonal), and size-1 broadcasting.
    Unlike PyTorch, which may return a view for one-operand equations ('ij->ji', 'ii->i'), the
    result always has storage of its own.
    """
    if isinstance(equation, Tensor):   # the sublist form: einsum(a, [0, 1], b, [1, 2], [0, 2])
        equation, operands = _sublist_equation((equation,) + tuple(operands))
    elif len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not isinstance(equation, str):
        raise ArgumentTypeError(
            f"einsum: expected the equation string first, got {type(equation).__name__}")
    if not operands:
        raise ArgumentValueError("einsum: expected at least one operand")
    if _autocast.any_enabled() and _contracts_between_operands(equation, operands):
        operands = _autocast.to_lower_precision(*operands)  # autocast: runs in bf16/fp16
    return _einsum(equation, operands)


def _sublist_equation(arguments) -> tuple:
    """``(equation, operands)`` of einsum's sublist form: operand, subscripts, operand,
    subscripts ..., then the output's subscripts if given."""
    def letters(sublist) -> str:
        out = []
        for item in sublist:
            if item is Ellipsis:
                out.append("...")
            elif isinstance(item, int) and 0 <= item < 52:
                out.append(chr(ord("a") + item) if item < 26 else chr(ord("A") + item - 26))
            else:
                raise ArgumentValueError(f"einsum: subscripts in the sublist form are integers in "
                                         f"[0, 52) or Ellipsis, got {item!r}")
        return "".join(out)
    operands, inputs = arguments[0::2], arguments[1::2]
    output = None
    if len(arguments) % 2:                 # an odd count: the last one is the output's
        operands, output = operands[:-1], operands[-1]
    if not all(isinstance(o, Tensor) for o in operands) or \
            not all(isinstance(i, (list, tuple)) for i in inputs):
        raise ArgumentTypeError(
            "einsum: the sublist form alternates tensors and lists of subscripts")
    equation = ",".join(letters(i) for i in inputs)
    if output is not None:
        equation += "->" + letters(output)
    return equation, tuple(operands)


def _einsum(equation: str, operands) -> Tensor:
    """:func:`einsum` after its autocast hook (tensordot has its own autocast rule)."""
    _check_operands("einsum", *operands)
    inputs, out_sub = _parse_einsum(equation, [tuple(o.shape) for o in operands])

    # each letter has one size; a size-1 dimension broadcasts against a larger one (PyTorch allows
    # it for every letter): such dims are squeezed away, so the letter is summed out of that operand
    sizes = {}
    for i, (sub, o) in enumerate(zip(inputs, operands)):
        # a letter repeated within one operand reads a diagonal: no broadcasting there
        own = {}
        for c, n in zip(sub, o.shape):
            if own.setdefault(c, n) != n:
                raise ShapeError(f"einsum: subscript {c!r} is repeated in operand {i} (shape "
                                 f"{tuple(o.shape)}) with different sizes: {own[c]} and {n}")
        for c, n in zip(sub, o.shape):
            if c in sizes and n != sizes[c] and n != 1 and sizes[c] != 1:
                raise ShapeError(f"einsum: subscript {c!r} of {equation!r} has size {sizes[c]} "
                                 f"elsewhere but {n} in operand {i} (shape {tuple(o.shape)})")
            if c not in sizes or sizes[c] == 1:
                sizes[c] = n
    ops = list(operands)
    for i, (sub, o) in enumerate(zip(inputs, operands)):
        squeeze = [j for j, (c, n) in enumerate(zip(sub, o.shape)) if n == 1 and sizes[c] != 1]
        if squeeze:
            ops[i] = reshape(o, tuple(n for j, n in enumerate(o.shape) if j not in squeeze))
            inputs[i] = "".join(c for j, c in enumerate(sub) if j not in squeeze)
    return Einsum.apply(",".join(inputs) + "->" + out_sub, *ops)


def _contracts_between_operands(equation: str, operands) -> bool:
    """Autocast rule for einsum: PyTorch's einsum is a chain of pairwise products, and a pair
    that sums a shared subscript runs as ``bmm``, which autocast casts to bf16/fp16; pairs that
    sum nothing (outer and elementwise products, 'ij,ij->ij') are a ``mul`` and stay float32.
    gradient casts every operand when some subscript is summed between two operands. (PyTorch's
    result can then still be float32 when a later pair multiplies in an uncast float32 operand,
    as in 'ij,j,k->ik'; gradient gives bfloat16 there.)"""
    if len(operands) < 2 or not all(isinstance(o, Tensor) for o in operands):
        return False
    try:
        inputs, out_sub = _parse_einsum(equation.replace(" ", ""), [tuple(o.shape) for o in operands])
    except (ValueError, TypeError, AttributeError):
        return False  # a bad equation: einsum's own checks report it
    return any(sum(c in sub for sub in inputs) > 1 and c not in out_sub for c in set("".join(inputs)))


def tensordot(a: Tensor, b: Tensor, dims=2) -> Tensor:
    """Sum of products over ``dims``: the last ``dims`` of ``a`` with the first of ``b`` (an int),
    or the listed dims ``([a dims], [b dims])``: ``gradient.tensordot(a, b, dims=([1, 0], [0, 1]))``.
    """
    if not isinstance(dims, (list, tuple, Tensor)):
        dims = as_int(dims, "tensordot: dims")
    if _autocast.any_enabled() and isinstance(a, Tensor) and isinstance(b, Tensor):
        # autocast: PyTorch's tensordot is an mm (cast to bf16/fp16), except when it contracts
        # every dimension of both operands: then it is a dot, which stays float32
        if isinstance(dims, (list, tuple)):
            n_dims = len(dims[0]) if isinstance(dims[0], (list, tuple)) else 1
        else:
            n_dims = int(dims)
        if not (n_dims == a.ndim == b.ndim):
            a, b = _autocast.to_lower_precision(a, b)
    _check_operands("tensordot", a, b)
    if isinstance(dims, int) or hasattr(dims, "__index__") and not isinstance(dims, (list, tuple)):
        n = int(dims)
        if n < 0 or n > min(a.ndim, b.ndim):
            raise ShapeError(f"tensordot: dims={n} must be between 0 and the smaller number of "
                             f"dimensions, {min(a.ndim, b.ndim)}")
        dims_a, dims_b = list(range(a.ndim - n, a.ndim)), list(range(n))
    else:
        dims_a, dims_b = dims
        dims_a = [dims_a] if isinstance(dims_a, int) else list(dims_a)
        dims_b = [dims_b] if isinstance(dims_b, int) else list(dims_b)
        if len(dims_a) != len(dims_b):
            raise ShapeError(f"tensordot: both dim lists must have the same length, got {dims_a} "
                             f"and {dims_b}")
    dims_a = [wrap_dim(d, a.ndim) for d in dims_a]
    dims_b = [wrap_dim(d, b.ndim) for d in dims_b]
    for dims, which in ((dims_a, "first"), (dims_b, "second")):
        twice = [d for d in dims if dims.count(d) > 1]
        if twice:
            raise ShapeError(f"tensordot: dimension {twice[0]} of the {which} operand is listed twice "
                             f"in dims {dims}")
    if a.ndim + b.ndim > len(_LETTERS):
        raise ShapeError(f"tensordot: too many dimensions ({a.ndim} + {b.ndim})")
    for da, db in zip(dims_a, dims_b):
        if a.shape[da] != b.shape[db]:
            raise ShapeError(f"tensordot: dimension {da} of shape {tuple(a.shape)} and dimension {db} "
                             f"of shape {tuple(b.shape)} differ: {a.shape[da]} != {b.shape[db]}")
    sub_a = list(_LETTERS[:a.ndim])
    sub_b = list(_LETTERS[a.ndim:a.ndim + b.ndim])
    for da, db in zip(dims_a, dims_b):
        sub_b[db] = sub_a[da]
    out = [c for i, c in enumerate(sub_a) if i not in dims_a]
    out += [c for i, c in enumerate(sub_b) if i not in dims_b]
    return _einsum("".join(sub_a) + "," + "".join(sub_b) + "->" + "".join(out), (a, b))



# ---------------------------------------------------------------------- pairwise distances
def cdist(x1: Tensor, x2: Tensor, p: float = 2.0,
          compute_mode: str = "use_mm_for_euclid_dist_if_necessary") -> Tensor:
    """The p-norm distance between each row of ``x1`` (..., P, M) and each row of ``x2``
    (..., R, M): a (..., P, R) tensor; batch dimensions broadcast.

    Computed from the differences themselves for every ``p`` (PyTorch may use the faster but
    less exact ``|a|^2 + |b|^2 - 2ab`` for p=2; ``compute_mode`` is accepted and ignored).
    The gradient at distance 0 is 0, as in PyTorch. Example: ``gradient.cdist(a, b).min(dim=1)``.
    """
    from .reduce import norm
    from .shape import unsqueeze
    _check_operands("cdist", x1, x2)
    for name, t in (("x1", x1), ("x2", x2)):
        if t.ndim < 2:
            raise ShapeError(f"cdist: expected {name} to have at least 2 dimensions (rows, features), "
                             f"got shape {tuple(t.shape)}")
    if not x1.dtype.is_floating_point:
        raise DTypeError(f"cdist: expected floating-point tensors, got {x1.dtype}")
    if x1.shape[-1] != x2.shape[-1]:
        raise ShapeError(f"cdist: x1 {tuple(x1.shape)} and x2 {tuple(x2.shape)} must have the same "
                         f"number of features (last dimension): {x1.shape[-1]} != {x2.shape[-1]}")
    if not p >= 0:
        raise ArgumentValueError(f"cdist: p must be non-negative, got {p}")
    _broadcast_batch("cdist", tuple(x1.shape), tuple(x2.shape))
    return norm(unsqueeze(x1, -2) - unsqueeze(x2, -3), p, dim=-1)
