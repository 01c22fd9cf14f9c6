"""``vmap`` as a loop: call the function once per index of the mapped dimension and stack.

PyTorch's vmap pushes the batch dimension through each operator (batching rules), so the
function runs once on the whole batch. gradient has no batching rules: this vmap slices every
mapped input, calls the function on each slice in a Python loop, and stacks the results along
``out_dims``. The semantics (in_dims, out_dims, pytrees, nesting, composing with ``grad``) are
PyTorch's; the speed is that of the loop you would have written, not faster.
"""

from __future__ import annotations

import functools

from ..autograd import grad_mode
from ..ops.creation import default_generator, zeros
from ..ops.index import select
from ..ops.shape import stack
from ..tensor import Tensor
from ._pytree import broadcast_prefix, tree_flatten, tree_unflatten
from ..errors import ArgumentValueError, IndexRangeError

__all__ = ["vmap"]

_RANDOMNESS = ("error", "different", "same")


def _name(func) -> str:
    return getattr(func, "__name__", repr(func))


def _is_dim(d) -> bool:
    return isinstance(d, int) and not isinstance(d, bool)


def _flat_in_dims(func, in_dims, args):
    """One in_dim (int or None) per leaf of ``args``, with PyTorch's errors."""
    where = f"vmap({_name(func)}, in_dims={in_dims}, ...)(<inputs>)"
    if not _is_dim(in_dims) and not isinstance(in_dims, tuple):
        raise ArgumentValueError(
            f"{where}: expected `in_dims` to be int or a (potentially nested) tuple "
            f"matching the structure of inputs, got: {type(in_dims)}.")
    if not args:
        raise ArgumentValueError(
            f"vmap({_name(func)})(<inputs>): got no inputs. Maybe you forgot to add "
            "inputs, or you are trying to vmap over a function with no inputs. The "
            "latter is unsupported.")
    leaves, spec = tree_flatten(args)
    dims = broadcast_prefix(in_dims, args)
    if dims is None:
        raise ArgumentValueError(
            f"{where}: in_dims is not compatible with the structure of `inputs`. "
            f"in_dims has structure {tree_flatten(in_dims)[1]!r} but inputs has "
            f"structure {spec!r}.")
    for i, (leaf, d) in enumerate(zip(leaves, dims)):
        if d is None:
            continue
        if not _is_dim(d):
            raise ArgumentValueError(
                f"{where}: Got in_dim={d} for an input but in_dim must be either an "
                "integer dimension or None.")
        if not isinstance(leaf, Tensor):
            raise ArgumentValueError(
                f"{where}: Got in_dim={d} for an input but the input is of type "
                f"{type(leaf)}. We cannot vmap over non-Tensor arguments, please use "
                "None as the respective in_dim")
        n = leaf.dim()
        if not -n <= d < n:
            raise ArgumentValueError(
                f"{where}: Got in_dim={d} for some input, but that input is a Tensor "
                f"of dimensionality {n} so expected in_dim to satisfy "
                f"-{n} <= in_dim < {n}.")
        dims[i] = d % n
    return leaves, spec, dims


def _batch_size(leaves, dims) -> int:
    sizes = [leaf.shape[d] for leaf, d in zip(leaves, dims) if d is not None]
    if not sizes:
        raise ArgumentValueError("vmap: Expected at least one Tensor to vmap over")
    if any(s != sizes[0] for s in sizes):
        raise ArgumentValueError("vmap: Expected all tensors to have the same size in the mapped "
                                 f"dimension, got sizes {sizes} for the mapped dimension")
    return sizes[0]


def _slice(leaves, dims, i):
    """The arguments' leaves at index ``i`` of their mapped dimension (``i=None``: zeros of a
    slice's shape, to learn the output shapes when the batch is empty)."""
    out = []
    for leaf, d in zip(leaves, dims):
        if d is None:
            out.append(leaf)
        elif i is None:
            shape = tuple(leaf.shape[:d]) + tuple(leaf.shape[d + 1:])
            out.append(zeros(*shape, dtype=leaf.dtype, device=leaf.device))
        else:
            out.append(select(leaf, d, i))
    return out


def _flat_out_dims(func, out_dims, output):
    """One out_dim (int or None) per leaf of ``output``."""
    where = f"vmap({_name(func)}, ..., out_dims={out_dims})(<inputs>)"
    leaves, spec = tree_flatten(output)
    if isinstance(out_dims, tuple) and len(out_dims) == 1 and spec.is_leaf():
        out_dims = out_dims[0]    # out_dims=(0,) for a single output, as PyTorch allows
    dims = broadcast_prefix(out_dims, output)
    if dims is None:
        raise ArgumentValueError(
            f"{where}: out_dims is not compatible with the structure of `outputs`. "
            f"out_dims has structure {tree_flatten(out_dims)[1]!r} but outputs has "
            f"structure {spec!r}.")
    for d in dims:
        if d is not None and not _is_dim(d):
            raise ArgumentValueError(
                f"vmap({_name(func)}, ..., out_dims={out_dims}): `out_dims` must be an "
                "int, None or a python collection of ints representing where in the "
                "outputs the vmapped dimension should appear.")
    return leaves, spec, dims


def _same_value(a, b) -> bool:
    """Whether two per-slice outputs are identical (NaNs equal), for ``out_dims=None``."""
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        return a is b or a == b
    if tuple(a.shape) != tuple(b.shape) or a.dtype != b.dtype:
        return False
    with grad_mode.no_grad():
        same = (a == b) | ((a != a) & (b != b))
        return bool(same.all())


def _combine(func, per_slice, out_dims, batch_size, empty: bool):
    """Stack the per-slice outputs (each a pytree) along their out_dims."""
    first_leaves, spec, dims = _flat_out_dims(func, out_dims, per_slice[0])
    columns = [[leaf] for leaf in first_leaves]
    for out in per_slice[1:]:
        leaves, s = tree_flatten(out)
        if s != spec:
            raise ArgumentValueError(
                f"vmap({_name(func)}, ...): `{_name(func)}` returned outputs of "
                f"different structures for different slices: {spec!r} and {s!r}")
        for column, leaf in zip(columns, leaves):
            column.append(leaf)
    result = []
    for column, d in zip(columns, dims):
        first = column[0]
        if d is None:
            if not all(_same_value(first, other) for other in column[1:]):
                raise ArgumentValueError(
                    f"vmap({_name(func)}, ...): `{_name(func)}` can not return a "
                    "BatchedTensor when out_dim is None (its value differs between "
                    "slices of the mapped dimension)")
            result.append(first)
            continue
        if not isinstance(first, Tensor):
            raise ArgumentValueError(
                f"vmap({_name(func)}, ...): `{_name(func)}` must only return Tensors, "
                f"got type {type(first)}. Did you mean to set out_dims= to None for "
                "output?")
        n = first.dim() + 1
        if not -n <= d < n:
            raise IndexRangeError(
                f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                f"but got {d})")
        d %= n
        for other in column[1:]:
            if tuple(other.shape) != tuple(first.shape):
                raise ArgumentValueError(
                    f"vmap({_name(func)}, ...): `{_name(func)}` returned tensors of "
                    f"different shapes for different slices: {tuple(first.shape)} and "
                    f"{tuple(other.shape)}; a vmapped function must return one shape")
        if empty:
            shape = list(first.shape)
            shape.insert(d, 0)
            result.append(zeros(*shape, dtype=first.dtype, device=first.device))
        else:
            result.append(stack(column, dim=d))
    return tree_unflatten(result, spec)


def vmap(func, in_dims=0, out_dims=0, randomness: str = "error", *, chunk_size=None):
    """Map ``func`` over a dimension of its inputs, as ``torch.func.vmap``.

    ``in_dims``: an int (the mapped dimension of every tensor argument) or a tuple with one
    entry per positional argument; an entry is an int, None (not mapped: passed whole to every
    call) or, for an argument that is a tuple/list/dict of tensors, a nested spec of the same
    structure. Keyword arguments are never mapped. ``out_dims`` says where the mapped dimension
    goes in each output, in the same way (None: the output is returned once, unstacked; it must
    then be the same for every slice). Inputs and outputs may be pytrees of tensors.

    Per-sample gradients, the main use::

        params = {k: v.detach() for k, v in model.named_parameters()}
        def loss(p, x, y):
            out = gradient.func.functional_call(model, p, (x.unsqueeze(0),))
            return F.cross_entropy(out, y.unsqueeze(0))
        per_sample = vmap(grad(loss), in_dims=(None, 0, 0))(params, xs, ys)   # each [B, *p.shape]

    Differs from PyTorch:

    * it is a loop, not batching rules: ``func`` runs once per slice and the results are stacked.
      Correct, and as fast as the equivalent Python loop (not faster).
    * ``randomness='error'`` does not detect random operations (it behaves as 'different');
      ``'different'``: each slice draws its own numbers (the loop's natural behaviour);
      ``'same'``: the default generator is reset to one state before every slice, so each slice
      draws the same numbers (the generator ends where the last slice left it).
    * ``chunk_size`` is validated and has no effect.
    * an empty mapped dimension calls ``func`` once on zeros of one slice's shape, to learn the
      output shapes, and returns empty results.

    Example::

        >>> x = gradient.arange(6.0).reshape(2, 3)
        >>> vmap(lambda row: row.sum())(x)
        tensor([ 3., 12.])
        >>> vmap(lambda a, b: a * b, in_dims=(1, None))(x, gradient.tensor(2.0))
        tensor([[ 0.,  6.],
                [ 2.,  8.],
                [ 4., 10.]])
    """
    if randomness not in _RANDOMNESS:
        raise ArgumentValueError("Only allowed values for randomness are 'error', 'different', or "
                                 f"'same'. Got {randomness}")
    if chunk_size is not None and (not _is_dim(chunk_size) or chunk_size <= 0):
        raise ArgumentValueError(
            f"vmap: chunk_size should be None or greater than 0. (got {chunk_size})")

    @functools.wraps(func)
    def wrapped(*args, **kwargs):
        leaves, spec, dims = _flat_in_dims(func, in_dims, args)
        batch_size = _batch_size(leaves, dims)
        state = default_generator.get_state() if randomness == "same" else None
        per_slice = []
        for i in (range(batch_size) if batch_size else [None]):
            if state is not None:
                default_generator.set_state(state)
            per_slice.append(func(*tree_unflatten(_slice(leaves, dims, i), spec), **kwargs))
        return _combine(func, per_slice, out_dims, batch_size, empty=batch_size == 0)

    return wrapped
