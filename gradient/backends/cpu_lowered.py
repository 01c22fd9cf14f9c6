"""Compiled forms of the CPU's array operations, for captured steps compiled into one loop
(:mod:`gradient.capture.compiled`): what an op without a kernel of its own (a reshape, an
addition, a float32 ``Linear``) or the KV cache's write computes, as numba functions a compiled
loop calls. Each computes the bits of the NumPy call it stands for: IEEE operations are the
same in both; a product goes to NumPy's own BLAS from inside the compiled code (numba's
``objmode``), since numba's ``np.dot`` calls another BLAS build that may round otherwise.
The half-precision addition and multiplication serve eager code too (:func:`half_binary`, the
NumPy backend's kernel for them): one call instead of NumPy's four.

Each is registered as the compiled form of its op (``gradient.kernels.lowers``) for float32 or
float64 NumPy arrays of one dtype, and the elementwise ones (and the views) for float16 and
bfloat16 arrays too: those reach a compiled loop as their bits (:mod:`.cpu_half`), and each
operation computes in float32 and rounds once, as NumPy's (ml_dtypes') operations on them do.

Example::

    >>> y = add(np.ones(3, np.float32), np.ones(3, np.float32))
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ..kernels.lowering import Derived, Lowered
from ..kernels.registry import lowers, register
from .cpu_compile import FLOATS, compile_kernel
from .cpu_float_rows import lowered_float_rows_linear
from .cpu_half import HALF_DTYPES, as_bits, holds, narrow, widen

__all__ = ["reshape", "permute", "add", "mul", "cast", "unbind3", "linear", "kv_write",
           "paged_kv_write", "takes", "unliteral", "half_binary"]

_NO_BIAS = {np.dtype(d): np.empty(0, d) for d in FLOATS}   # one constant: the same in every layer


def takes(*arrays, halves: bool = False) -> bool:
    """Whether the compiled forms here take these arrays: NumPy float32/float64 (or, with
    ``halves``, float16 or bfloat16), one dtype."""
    dtype = arrays[0].dtype
    return ((dtype in FLOATS or (halves and dtype in HALF_DTYPES))
            and all(type(a) is np.ndarray and a.dtype == dtype for a in arrays))


@compile_kernel
def reshape(x, shape):
    """``x`` reshaped (a copy where x is not contiguous, as NumPy's reshape of such a view)."""
    return np.ascontiguousarray(x).reshape(shape)


@compile_kernel
def permute(x, shape, strides):
    """``x`` with its axes permuted: the view of ``shape`` and ``strides`` (bytes), as the
    lowering computed them from x's."""
    return np.lib.stride_tricks.as_strided(x, shape, strides)


# b is repeated over a's leading dimensions by a loop over its own elements inside one over
# a's rows (slices, whose indices LLVM sees start at 0: it vectorises the loop), not by
# ``b[i % b.size]``: an integer division per element, and scalar code (8 rows of SmolLM2's
# residual adds, 4,608 values: 5.1 -> 1.5 us a call)

@compile_kernel
def add(a, b):
    """``a + b`` for contiguous arrays, b of a's shape or of its trailing dimensions (a bias)."""
    out = np.empty(a.shape, a.dtype)
    flat, fa, fb = out.reshape(out.size), a.reshape(a.size), b.reshape(b.size)
    n = fb.size
    if n == 1:                                     # one value: a loop over a alone
        v = widen(fb[0])
        for i in range(flat.size):
            flat[i] = narrow(widen(fa[i]) + v, flat)
        return out
    for r in range(0, flat.size, max(n, 1)):       # (n is 0 only where a is empty too)
        row, a_row = flat[r:r + n], fa[r:r + n]
        for j in range(n):
            row[j] = narrow(widen(a_row[j]) + widen(fb[j]), flat)
    return out


@compile_kernel
def mul(a, b):
    """``a * b`` for contiguous arrays, b of a's shape or of its trailing dimensions (or a
    number: 0-d)."""
    out = np.empty(a.shape, a.dtype)
    flat, fa, fb = out.reshape(out.size), a.reshape(a.size), b.reshape(b.size)
    n = fb.size
    if n == 1:                                     # one value: a loop over a alone
        v = widen(fb[0])
        for i in range(flat.size):
            flat[i] = narrow(widen(fa[i]) * v, flat)
        return out
    for r in range(0, flat.size, max(n, 1)):
        row, a_row = flat[r:r + n], fa[r:r + n]
        for j in range(n):
            row[j] = narrow(widen(a_row[j]) * widen(fb[j]), flat)
    return out


@compile_kernel
def cast(x, like):
    """``x`` (contiguous) in the element type of ``like`` (an empty array): float32 widened
    from 16-bit floats' bits, or those bits narrowed from float32."""
    out = np.empty(x.shape, like.dtype)
    flat, fx = out.reshape(out.size), x.reshape(x.size)
    for i in range(flat.size):
        flat[i] = narrow(widen(fx[i]), flat)
    return out


@compile_kernel
def unbind3(x):
    """The three slices of x along its first dimension (views): q, k and v."""
    return x[0], x[1], x[2]


def _matmul_into(x2, weight, y):
    """``y[...] = x2 @ weight.T``: the product the NumPy backend's ``Linear`` computes."""
    np.matmul(x2, weight.T, out=y)


@compile_kernel
def linear(x, weight, bias, has_bias, rows, out_shape):
    """``x @ weight.T (+ bias)`` over the last dimension of x, reshaped to ``out_shape``."""
    x2 = np.ascontiguousarray(x).reshape((rows, x.shape[-1]))
    y = np.empty((rows, weight.shape[0]), x.dtype)
    with numba.objmode():
        _matmul_into(x2, weight, y)
    if has_bias:
        for r in range(rows):
            for j in range(y.shape[1]):
                y[r, j] += bias[j]
    return y.reshape(out_shape)


@compile_kernel
def kv_write(keys, values, length, layer, key, value):
    """Write ``key``/``value`` (batch, kv_heads, T, head_dim) at positions ``length ..`` of
    layer ``layer`` of the cache buffers ``keys``/``values`` (layers, batch, kv_heads,
    max_length, head_dim), 16-bit ones as their bits (:mod:`.cpu_half`; rounded to nearest
    even, as NumPy's assignment rounds); the filled part of that layer's buffers, as
    :meth:`gradient.generation.KVCache.update_arrays` returns it."""
    B, H, T, D = key.shape
    end = length + T
    if end > keys.shape[3]:
        raise IndexError("KVCache: the positions do not fit in the cache")
    for b in range(B):
        for h in range(H):
            for t in range(T):
                for d in range(D):
                    keys[layer, b, h, length + t, d] = narrow(widen(key[b, h, t, d]), keys)
                    values[layer, b, h, length + t, d] = narrow(widen(value[b, h, t, d]),
                                                                values)
    return keys[layer, :, :, :end], values[layer, :, :, :end]


@compile_kernel
def paged_kv_write(keys, values, tables, lengths, block_size, layer, key, value):
    """Row b's ``key``/``value`` (rows, kv_heads, 1, head_dim) at its position ``lengths[b]``
    of layer ``layer`` of a paged KV cache's pools, ``keys`` (layers, n_blocks, kv_heads,
    head_dim, block_size: each block's keys transposed) and ``values`` (layers, n_blocks,
    kv_heads, block_size, head_dim): in block ``tables[b, lengths[b] // block_size]``, as
    :meth:`gradient.generation.PagedKVCache.update_arrays` writes it (16-bit pools as their
    bits); that layer's pools."""
    B, H, _, D = key.shape
    for b in range(B):
        position = lengths[b]
        if position // block_size >= tables.shape[1]:
            raise IndexError("PagedKVCache: the position does not fit in the row's blocks")
        block, at = tables[b, position // block_size], position % block_size
        for h in range(H):
            for d in range(D):
                keys[layer, block, h, d, at] = narrow(widen(key[b, h, 0, d]), keys)
                values[layer, block, h, at, d] = narrow(widen(value[b, h, 0, d]), values)
    return keys[layer], values[layer]


# ----------------------------------------------------------------------------- registered
@lowers("reshape", "cpu")
def _lower_reshape(x, shape):
    if not takes(x, halves=True):
        return None
    return Lowered(reshape, (x, tuple(x.reshape(shape).shape)))


@lowers("permute", "cpu")
def _lower_permute(x, axes):
    if not takes(x, halves=True):
        return None
    view = x.transpose(axes)
    return Lowered(permute, (x, tuple(view.shape), tuple(view.strides)))


def _trailing(a, b) -> bool:
    """b has a's shape or that of its trailing dimensions (broadcast over the leading ones),
    both contiguous and not empty."""
    return (b.ndim <= a.ndim and b.shape == a.shape[a.ndim - b.ndim:] and b.size > 0
            and a.flags.c_contiguous and b.flags.c_contiguous)


def _repeated_last(a, b):
    """``(a, b)`` where b has a's shape or its trailing dimensions, ``(b, a)`` where a has
    b's (a norm's weight times its input: an addition or a product commutes, the bits are
    the same), else None: the operands as :func:`add` and :func:`mul` take them."""
    if _trailing(a, b):
        return a, b
    return (b, a) if _trailing(b, a) else None


def _lower_commuting(fn, a, b):
    """``fn(a, b)``'s compiled form, or ``fn(b, a)``'s where a broadcasts over b."""
    operands = _repeated_last(a, b) if takes(a, b, halves=True) else None
    return None if operands is None else Lowered(fn, operands)


@lowers("add", "cpu")
def _lower_add(a, b):
    return _lower_commuting(add, a, b)


@lowers("mul", "cpu")
def _lower_mul(a, b):
    return _lower_commuting(mul, a, b)


_HALF_BINARY = {"add": add, "mul": mul}


@register("half_binary", "cpu", "numba")
def half_binary(op, a, b):
    """``a + b`` or ``a * b`` (``op``: "add", "mul") of NumPy float16 or bfloat16 arrays of one
    dtype, contiguous, one of the other's shape or of its trailing dimensions: :func:`add` or
    :func:`mul` on their bits, NumPy's bits (each value computed in float32 and rounded once);
    None for anything else (the caller's NumPy operation then runs). Out of a compiled step,
    one call instead of NumPy's four (two widenings, the operation, a rounding): a bfloat16
    model's residual additions and norm weights (SmolLM2-135M's prefill of 16 tokens 33.6 ->
    32.3 ms, of 64 tokens 75.3 -> 73.2). The arrays go in flat, so that four specializations
    serve every shape.

    Example: ``y = half_binary("add", x, residual)``
    """
    fn = _HALF_BINARY.get(op)
    if fn is None or not (takes(a, b, halves=True) and a.dtype in HALF_DTYPES):
        return None
    operands = _repeated_last(a, b)
    if operands is None:
        return None
    first, second = operands
    out = fn(as_bits(first).reshape(-1), as_bits(second).reshape(-1))
    return out.view(a.dtype).reshape(first.shape)


#: An empty array of each dtype a cast gives (one constant, the same in every layer).
_EMPTY = {np.dtype(d): np.empty(0, d) for d in (np.float32, *HALF_DTYPES)}


@lowers("cast", "cpu")
def _lower_cast(x, dtype):
    target = np.dtype(dtype.numpy if hasattr(dtype, "numpy") else dtype)
    pair = {x.dtype, target} if isinstance(x, np.ndarray) else set()
    if not (len(pair) == 2 and np.dtype(np.float32) in pair and pair & set(HALF_DTYPES)
            and x.flags.c_contiguous):
        return None
    return Lowered(cast, (x, _EMPTY[target]))


@lowers("unbind", "cpu")
def _lower_unbind(x, dim):
    ok = x.ndim > 0 and dim == 0 and x.shape[0] == 3 and takes(x)
    return Lowered(unbind3, (x,)) if ok else None


@lowers("linear", "cpu")
def _lower_linear(x, weight, bias):
    present = [] if bias is None else [bias]
    if not takes(x, weight, *present, halves=True) or x.ndim == 0 or weight.ndim != 2:
        return None
    lead = x.shape[:-1]
    rows = (math.prod(lead), x.shape[-1])
    if x.dtype in HALF_DTYPES:     # the low-precision kernel's rows, or nothing compiled
        return lowered_float_rows_linear(x, rows, weight, bias, bias is not None,
                                         lead + (weight.shape[0],))
    bias_ = _NO_BIAS[x.dtype] if bias is None else bias
    rows_form = lowered_float_rows_linear(x, rows, weight, bias_, bias is not None,
                                          lead + (weight.shape[0],))
    if rows_form is not None:      # a few float32 rows: as the op computes them
        return rows_form
    return Lowered(linear, (x, weight, bias_, bias is not None, rows[0],
                            lead + (weight.shape[0],)))


def _stacked_keys(cache):
    return as_bits(cache.stacked()[0])


def _stacked_values(cache):
    return as_bits(cache.stacked()[1])


def _length(cache):
    return cache.length


@lowers("kv_write", "cpu")
def _lower_kv_write(cache, layer, key, value):
    stacked = cache.stacked()
    if (stacked is None or not takes(key, value, halves=True) or key.ndim != 4
            or not all(holds(a, key.dtype) for a in stacked)):
        return None
    return Lowered(kv_write, (Derived(cache, _stacked_keys, "keys"),
                              Derived(cache, _stacked_values, "values"),
                              Derived(cache, _length, "length"), layer, key, value))


def _rows_tables(cache):
    return cache.tables[:cache.step_rows]


def _rows_lengths(cache):
    return cache.lengths[:cache.step_rows]


@lowers("paged_kv_write", "cpu")
def _lower_paged_kv_write(cache, layer, key, value):
    stacked = cache.stacked()
    if (stacked is None or not takes(key, value, halves=True) or key.ndim != 4
            or key.shape[2] != 1 or not all(holds(a, key.dtype) for a in stacked)):
        return None
    return Lowered(paged_kv_write, (Derived(cache, _stacked_keys, "keys"),
                                    Derived(cache, _stacked_values, "values"),
                                    Derived(cache, _rows_tables, "tables"),
                                    Derived(cache, _rows_lengths, "lengths"),
                                    np.int64(cache.block_size), layer, key, value))


# ----------------------------------------------------------------------------- layers' arrays
# A compiled loop over a model's layers reads each layer's weights. Passed as a tuple of
# arrays indexed by the layer, numba compiles every read into a switch over the layers (30
# layers, 25 weights: minutes of LLVM); instead the loop gets every weight's address and shape
# per layer in two integer arrays and makes the layer's array in place (no copy). The arrays
# are C-contiguous and kept alive by the caller.
@numba.extending.intrinsic
def _pointer(typingctx, address, like):
    """A pointer to ``like``'s dtype at the integer ``address``."""
    signature = numba.types.CPointer(like.dtype)(address, like)

    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], context.get_value_type(sig.return_type))
    return signature, codegen


@compile_kernel(inline=True)
def layer_array0(addresses, shapes, like, layer):
    """Weight ``i`` of layer ``layer`` (a number here), called with ``addresses[i]``,
    ``shapes[i]``."""
    return numba.carray(_pointer(addresses[layer], like), ())


@compile_kernel(inline=True)
def layer_array1(addresses, shapes, like, layer):
    return numba.carray(_pointer(addresses[layer], like), (shapes[layer, 0],))


@compile_kernel(inline=True)
def layer_array2(addresses, shapes, like, layer):
    return numba.carray(_pointer(addresses[layer], like), (shapes[layer, 0], shapes[layer, 1]))


@compile_kernel(inline=True)
def layer_array3(addresses, shapes, like, layer):
    return numba.carray(_pointer(addresses[layer], like),
                        (shapes[layer, 0], shapes[layer, 1], shapes[layer, 2]))


@compile_kernel(inline=True)
def layer_array4(addresses, shapes, like, layer):
    return numba.carray(_pointer(addresses[layer], like),
                        (shapes[layer, 0], shapes[layer, 1], shapes[layer, 2], shapes[layer, 3]))


@compile_kernel(inline=True)
def layer_array5(addresses, shapes, like, layer):
    return numba.carray(_pointer(addresses[layer], like),
                        (shapes[layer, 0], shapes[layer, 1], shapes[layer, 2], shapes[layer, 3],
                         shapes[layer, 4]))


#: layer_array<ndim>, by ndim
LAYER_ARRAYS = {0: layer_array0, 1: layer_array1, 2: layer_array2, 3: layer_array3,
                4: layer_array4, 5: layer_array5}
#: Columns of the shapes array: the most dimensions a layer's array has.
MAX_DIMS = max(LAYER_ARRAYS)


def layer_arrays(weights) -> tuple | None:
    """``(addresses, shapes)`` for :data:`LAYER_ARRAYS` of weights that differ from layer to
    layer (``weights[i]``: weight i's array in each layer): int64 arrays (weights, layers)
    and (weights, layers, :data:`MAX_DIMS`); None unless every one is a C-contiguous NumPy
    array of 0 to MAX_DIMS dimensions, each weight of one dtype and number of dimensions in
    every layer."""
    for arrays in weights:
        first = arrays[0]
        if first.ndim not in LAYER_ARRAYS or not all(
                type(a) is np.ndarray and a.dtype == first.dtype and a.ndim == first.ndim
                and a.flags.c_contiguous for a in arrays):
            return None
    addresses = np.array([[a.ctypes.data for a in arrays] for arrays in weights], np.int64)
    shapes = np.zeros((len(weights), len(weights[0]), MAX_DIMS), np.int64)
    for i, arrays in enumerate(weights):
        for j, a in enumerate(arrays):
            shapes[i, j, :a.ndim] = a.shape
    return addresses.reshape(len(weights), -1), shapes


# ----------------------------------------------------------------------------- constants
@numba.extending.intrinsic
def unliteral(typingctx, value):
    """``value``, a Python number or tuple of numbers written into a compiled loop's source,
    typed as an ordinary number (int64, bool, a tuple of them) instead of numba's literal of
    that value. A function given a literal is compiled for that value alone: a product kernel
    once for every shape a model calls it with, each compile optimising again all the code
    it calls (seconds each, and again for every batch size a server runs). LLVM still sees
    the constant.

    Example (in a loop's source)::

        t1_0 = F1(t0_0, unliteral((1, 576)), unliteral(2), ...)
    """
    plain = numba.types.unliteral(value)

    def codegen(context, builder, sig, args):
        return context.cast(builder, args[0], value, plain)
    return plain(value), codegen
