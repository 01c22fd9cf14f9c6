"""Fused CPU kernels, compiled with numba: one pass over memory where NumPy would make several.

A training step of a small transformer spends most of its non-matmul time streaming large
activations through memory; composing an activation's derivative from NumPy ufuncs reads and
writes them a dozen times. These kernels do the arithmetic of one op in one loop. They are the
NumPy backend's optional fused fast paths (``Backend.fused``); ``gradient.ops`` falls back to
the composition of primitives when a kernel is absent or declines an input (returns None).

Two rules keep them fast on any machine:

* Transcendentals (tanh, exp, erf) stay in NumPy/SciPy, whose loops are vectorised; numba
  calls the scalar libm functions unless Intel's SVML is installed. The kernels do the
  polynomial work around them.
* Kernels run on one thread (see :func:`gradient.backends.cpu_compile.compile_kernel`).

The kernels take contiguous float32 or float64 arrays; their wrappers make contiguous copies
of other layouts and decline other dtypes. numba compiles each kernel on first use and caches
the machine code on disk (``cache=True``).

Example::

    >>> from gradient.backends import cpu_kernels
    >>> y = cpu_kernels.gelu(np.ones(4, np.float32), "tanh")
"""

from __future__ import annotations

import math

import ml_dtypes
import numba
import numpy as np

from ..kernels.lowering import Lowered
from ..kernels.registry import lowers, prepares, register
from .cpu_compile import FLOATS as _FLOATS
from .cpu_compile import compile_kernel as _compile
from .cpu_compile import in_threads
from .cpu_compile import usable as _usable
from .cpu_half import HALF_DTYPES, as_bits, narrow, narrowed, widen, widened, widened_into
from .cpu_reduce import LANES, fold_lanes, lane_sum, lane_sum_squares
from .cpu_simd import fused_multiply_add
from .numpy_loops import exp_in_place, tanh_in_place

_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_GELU_C = 0.044715
_SQRT1_2 = 1 / math.sqrt(2)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


def _halves(*arrays) -> bool:
    """Whether every array is a NumPy array of one 16-bit float dtype (float16, bfloat16)."""
    dtype = arrays[0].dtype
    return dtype in HALF_DTYPES and all(isinstance(a, np.ndarray) and a.dtype == dtype
                                        for a in arrays)


def _flat(a):
    """``a`` as a contiguous 1-d array (a view when it already is contiguous)."""
    return np.ascontiguousarray(a).reshape(-1)


# ---------------------------------------------------------------------- GELU
@_compile
def _gelu_tanh_inner(x, k0, k1, out):
    for i in range(x.size):
        v = x[i]
        out[i] = k0 * (v + k1 * (v * v * v))


@_compile
def _gelu_tanh_finish(x, t, half, one, out):
    for i in range(x.size):
        out[i] = half * x[i] * (one + t[i])


@_compile
def _gelu_tanh_grad(g, x, t, half, one, k0, k3, out):
    # d/dx [0.5 x (1 + tanh(u))] = 0.5 (1 + t) + 0.5 x (1 - t^2) u',  u' = k0 (1 + 3 c x^2)
    for i in range(x.size):
        v = x[i]
        ti = t[i]
        du = k0 * (one + k3 * v * v)
        out[i] = g[i] * (half * (one + ti) + half * v * (one - ti * ti) * du)


@_compile
def _scale(x, k, out):
    for i in range(x.size):
        out[i] = x[i] * k


@_compile
def _gelu_erf_finish(x, e, half, one, out):
    for i in range(x.size):
        out[i] = half * x[i] * (one + e[i])


@_compile
def _neg_half_square(x, half, out):
    for i in range(x.size):
        out[i] = -half * x[i] * x[i]


@_compile
def _gelu_erf_grad(g, x, erf_x, exp_x, half, one, inv_sqrt_2pi, out):
    # d/dx [x Phi(x)] = Phi(x) + x phi(x)
    for i in range(x.size):
        out[i] = g[i] * (half * (one + erf_x[i]) + x[i] * exp_x[i] * inv_sqrt_2pi)




def _erf(x):
    from scipy.special import erf
    erf(x, out=x)
    return x


@register("gelu", "cpu", "numba", _FLOATS)
def gelu(x, approximate: str):
    """GELU of a float array (exact erf form, or ``approximate='tanh'``); None if not handled."""
    if not _usable(x):
        return None
    k = x.dtype.type
    flat = _flat(x)
    out = np.empty_like(flat)
    t = np.empty_like(flat)
    if approximate == "tanh":
        _gelu_tanh_inner(flat, k(_SQRT_2_OVER_PI), k(_GELU_C), t)
        np.tanh(t, out=t)
        _gelu_tanh_finish(flat, t, k(0.5), k(1.0), out)
    else:
        _scale(flat, k(_SQRT1_2), t)
        _gelu_erf_finish(flat, _erf(t), k(0.5), k(1.0), out)
    return out.reshape(x.shape)


@_compile
def gelu_tanh_compiled(x, k0, k1, half, one):
    """:func:`gelu` with the tanh approximation inside a compiled step (see
    :mod:`gradient.kernels.lowering`), with NumPy's tanh as the eager kernel takes it
    (:mod:`.numpy_loops`)."""
    flat = np.ascontiguousarray(x).reshape(x.size)
    t = np.empty_like(flat)
    _gelu_tanh_inner(flat, k0, k1, t)
    tanh_in_place(t)
    out = np.empty(x.shape, x.dtype)
    _gelu_tanh_finish(flat, t, half, one, out.reshape(out.size))
    return out


@lowers("gelu", "cpu")
def _lower_gelu(x, approximate: str):
    if approximate != "tanh" or not _usable(x):
        return None
    k = x.dtype.type
    return Lowered(gelu_tanh_compiled, (x, k(_SQRT_2_OVER_PI), k(_GELU_C), k(0.5), k(1.0)))


@register("gelu_backward", "cpu", "numba", _FLOATS)
def gelu_backward(grad, x, approximate: str):
    """``grad * gelu'(x)``; None if not handled."""
    if not _usable(grad, x) or grad.shape != x.shape:
        return None
    k = x.dtype.type
    flat, g = _flat(x), _flat(grad)
    out = np.empty_like(flat)
    t = np.empty_like(flat)
    if approximate == "tanh":
        _gelu_tanh_inner(flat, k(_SQRT_2_OVER_PI), k(_GELU_C), t)
        np.tanh(t, out=t)
        _gelu_tanh_grad(g, flat, t, k(0.5), k(1.0), k(_SQRT_2_OVER_PI), k(3 * _GELU_C), out)
    else:
        _scale(flat, k(_SQRT1_2), t)
        _erf(t)
        e = np.empty_like(flat)
        _neg_half_square(flat, k(0.5), e)
        np.exp(e, out=e)
        _gelu_erf_grad(g, flat, t, e, k(0.5), k(1.0), k(_INV_SQRT_2PI), out)
    return out.reshape(x.shape)


# ---------------------------------------------------------------------- SiLU
# sigmoid(x) as the NumPy backend computes it: with e = exp(-|x|) (no overflow for any x),
# 1 / (1 + e) for x >= 0 and e / (1 + e) below; the kernels round each step as the
# composition of primitives does, so they give its bits in a third of the passes.
@_compile
def _neg_abs(x, out):
    for i in range(x.size):
        out[i] = -abs(x[i])


@_compile(inline=True)
def _sigmoid(v, e, one):
    """sigmoid(v) from e = exp(-|v|), as the backend's ``sigmoid`` rounds it."""
    return (one if v >= 0 else e) / (one + e)


@_compile
def _silu_finish(x, e, one, out):
    for i in range(x.size):
        v = x[i]
        s = _sigmoid(v, e[i], one)
        out[i] = v * s


@_compile
def _silu_grad(g, x, e, one, out):
    # d/dx [x s(x)] = s (1 + x (1 - s))
    for i in range(x.size):
        v = x[i]
        s = _sigmoid(v, e[i], one)
        out[i] = g[i] * (s * (one + v * (one - s)))


def _exp_neg_abs(flat):
    e = np.empty_like(flat)
    _neg_abs(flat, e)
    np.exp(e, out=e)   # NumPy's vectorised exp (see the module docstring)
    return e


@register("silu", "cpu", "numba", _FLOATS)
def silu(x):
    """``x * sigmoid(x)`` of a float array; None if not handled."""
    if not _usable(x):
        return None
    flat = _flat(x)
    out = np.empty_like(flat)
    _silu_finish(flat, _exp_neg_abs(flat), x.dtype.type(1), out)
    return out.reshape(x.shape)


@register("silu_backward", "cpu", "numba", _FLOATS)
def silu_backward(grad, x):
    """``grad * silu'(x)``; None if not handled."""
    if not _usable(grad, x) or grad.shape != x.shape:
        return None
    flat = _flat(x)
    out = np.empty_like(flat)
    _silu_grad(_flat(grad), flat, _exp_neg_abs(flat), x.dtype.type(1), out)
    return out.reshape(x.shape)


# ---------------------------------------------------------------------- layer norm
@_compile
def _layer_norm_fwd(x, w, b, eps, y, mean, rstd):
    # x, y: (rows, n); w, b: (n,) or (0,) when absent; statistics accumulate in float64
    rows, n = x.shape
    acc = np.empty(LANES, np.float64)
    for r in range(rows):
        mu = lane_sum(x[r], acc) / n
        inv = 1.0 / math.sqrt(lane_sum_squares(x[r], mu, acc) / n + eps)
        mean[r] = mu
        rstd[r] = inv
        m, iv = mean[r], rstd[r]  # in the array's dtype from here on
        for j in range(n):
            v = (x[r, j] - m) * iv
            if w.size:
                v = v * w[j]
            if b.size:
                v = v + b[j]
            y[r, j] = v


@_compile
def _layer_norm_bwd(g, x, mean, rstd, w, dx, dw, db):
    # dx = rstd * (g w - mean(g w) - xhat * mean(g w xhat)); dw = sum g xhat; db = sum g.
    # The two row sums in lanes (see .cpu_reduce); dw and db are sums over rows, lane-wise
    # already.
    rows, n = x.shape
    full = n - n % LANES
    acc_a = np.empty(LANES, np.float64)
    acc_b = np.empty(LANES, np.float64)
    for r in range(rows):
        m, iv = mean[r], rstd[r]
        acc_a[:] = -0.0
        acc_b[:] = -0.0
        for j0 in range(0, full, LANES):
            for lane in range(LANES):
                j = j0 + lane
                xhat = (x[r, j] - m) * iv
                gw = g[r, j] * w[j] if w.size else g[r, j]
                acc_a[lane] += gw
                acc_b[lane] += gw * xhat
                dw[j] += g[r, j] * xhat
                db[j] += g[r, j]
        a = fold_lanes(acc_a)
        bsum = fold_lanes(acc_b)
        for j in range(full, n):
            xhat = (x[r, j] - m) * iv
            gw = g[r, j] * w[j] if w.size else g[r, j]
            a += gw
            bsum += gw * xhat
            dw[j] += g[r, j] * xhat
            db[j] += g[r, j]
        a_mean = a / n
        b_mean = bsum / n
        for j in range(n):
            xhat = (x[r, j] - m) * iv
            gw = g[r, j] * w[j] if w.size else g[r, j]
            dx[r, j] = iv * (gw - a_mean - xhat * b_mean)


@register("layer_norm", "cpu", "numba", _FLOATS)
def layer_norm(x, weight, bias, eps: float):
    """LayerNorm over the last dimension: ``(y, mean, rstd)``; None if not handled.

    ``mean`` and ``rstd`` (1/sqrt(var + eps)) have shape ``x.shape[:-1]`` and feed
    :func:`layer_norm_backward`.
    """
    present = [a for a in (weight, bias) if a is not None]
    if x.ndim == 0 or not _usable(x, *present):
        return None
    n = x.shape[-1]
    x2 = _flat(x).reshape(-1, n)
    weight, bias = (None if a is None else _flat(a) for a in (weight, bias))
    empty = np.empty(0, x.dtype)
    y = np.empty_like(x2)
    mean = np.empty(x2.shape[0], x.dtype)
    rstd = np.empty(x2.shape[0], x.dtype)
    _layer_norm_fwd(x2, empty if weight is None else weight, empty if bias is None else bias,
                    float(eps), y, mean, rstd)
    return y.reshape(x.shape), mean.reshape(x.shape[:-1]), rstd.reshape(x.shape[:-1])


@_compile
def layer_norm_compiled(x, w, b, eps):
    """:func:`layer_norm` inside a compiled step: ``(y, mean, rstd)``."""
    n = x.shape[-1]
    rows = x.size // n
    y = np.empty(x.shape, x.dtype)
    mean = np.empty(rows, x.dtype)
    rstd = np.empty(rows, x.dtype)
    _layer_norm_fwd(np.ascontiguousarray(x).reshape((rows, n)), w, b, eps, y.reshape((rows, n)),
                    mean, rstd)
    return y, mean, rstd


@lowers("layer_norm", "cpu")
def _lower_layer_norm(x, weight, bias, eps: float):
    present = [a for a in (weight, bias) if a is not None]
    if x.ndim == 0 or x.shape[-1] == 0 or not _usable(x, *present) or not all(
            a.flags.c_contiguous for a in present):
        return None
    w, b = (np.empty(0, x.dtype) if a is None else a.reshape(-1) for a in (weight, bias))
    return Lowered(layer_norm_compiled, (x, w, b, float(eps)))


@register("layer_norm_backward", "cpu", "numba", _FLOATS)
def layer_norm_backward(grad, x, mean, rstd, weight):
    """Gradients ``(dx, dweight, dbias)`` of :func:`layer_norm`; None if not handled."""
    present = [a for a in (weight,) if a is not None]
    if not _usable(grad, x, mean, rstd, *present) or grad.shape != x.shape:
        return None
    n = x.shape[-1]
    x2, g2 = _flat(x).reshape(-1, n), _flat(grad).reshape(-1, n)
    weight = None if weight is None else _flat(weight)
    dx = np.empty_like(x2)
    dw = np.zeros(n, np.float64)
    db = np.zeros(n, np.float64)
    _layer_norm_bwd(g2, x2, _flat(mean), _flat(rstd),
                    np.empty(0, x.dtype) if weight is None else weight, dx, dw, db)
    return dx.reshape(x.shape), dw.astype(x.dtype), db.astype(x.dtype)


# ---------------------------------------------------------------------- SwiGLU
# silu(gate) * up with silu rounded first, as the composition rounds it (the SiLU kernels'
# sigmoid, from NumPy's exp of -|gate|): the composition's bits in two passes instead of four.
@_compile
def _swiglu_finish(gate, e, up, one, out):
    # silu(gate) rounded to out's type, then times up, rounded: for floats the two products
    # as they are; for 16-bit floats (up and out as their bits, gate widened to float32) the
    # composition's two roundings
    for i in range(gate.size):
        v = gate[i]
        act = widen(narrow(v * _sigmoid(v, e[i], one), out))
        out[i] = narrow(act * widen(up[i]), out)


@_compile
def _swiglu_grad(g, gate, e, up, one, dgate, dup):
    # d/dgate = g up s (1 + gate (1 - s)); d/dup = g silu(gate), each in the order SwiGLU's
    # differentiable backward rounds it
    for i in range(gate.size):
        v = gate[i]
        s = _sigmoid(v, e[i], one)
        dgate[i] = (g[i] * up[i]) * (s * (one + v * (one - s)))
        dup[i] = g[i] * (v * s)


@register("swiglu", "cpu", "numba", _FLOATS + tuple(HALF_DTYPES))
def swiglu(gate, up):
    """``silu(gate) * up`` for ``gate`` and ``up`` of one shape and dtype; None if not
    handled. float16 and bfloat16 as their composition computes them: silu in float32,
    rounded, then the product, rounded."""
    if (isinstance(gate, np.ndarray) and gate.dtype in HALF_DTYPES
            and isinstance(up, np.ndarray) and up.dtype == gate.dtype
            and gate.shape == up.shape):
        wide = gate.astype(np.float32).reshape(-1)
        out = np.empty(gate.shape, gate.dtype)
        _swiglu_finish(wide, _exp_neg_abs(wide), as_bits(_flat(up)), np.float32(1),
                       as_bits(out).reshape(-1))
        return out
    if not _usable(gate, up) or gate.shape != up.shape:
        return None
    flat = _flat(gate)
    out = np.empty_like(flat)
    _swiglu_finish(flat, _exp_neg_abs(flat), _flat(up), gate.dtype.type(1), out)
    return out.reshape(gate.shape)


@prepares("swiglu", "cpu")
def _prepare_swiglu(gate, up):
    """:func:`swiglu` for later calls on contiguous arrays of this shape and dtype."""
    if swiglu(gate, up) is None or not (gate.flags.c_contiguous and up.flags.c_contiguous):
        return None
    if gate.dtype in HALF_DTYPES:
        return swiglu
    shape, dtype, one = gate.shape, gate.dtype, gate.dtype.type(1)

    def prepared(gate_, up_):
        if (gate_.shape != shape or up_.shape != shape or gate_.dtype != dtype
                or up_.dtype != dtype or not (gate_.flags.c_contiguous and up_.flags.c_contiguous)):
            return None
        flat = gate_.reshape(-1)
        out = np.empty(shape, dtype)
        _swiglu_finish(flat, _exp_neg_abs(flat), up_.reshape(-1), one, out.reshape(-1))
        return out
    return prepared


@_compile
def swiglu_compiled(gate, up, one):
    """:func:`swiglu` inside a compiled step (see :mod:`gradient.kernels.lowering`), with
    NumPy's exp as the eager kernel takes it (:mod:`.numpy_loops`: no interpreter lock)."""
    flat = widened(np.ascontiguousarray(gate)).reshape(gate.size)   # 16-bit: float32
    e = np.empty_like(flat)
    _neg_abs(flat, e)
    exp_in_place(e)
    out = np.empty(gate.shape, gate.dtype)
    _swiglu_finish(flat, e, np.ascontiguousarray(up).reshape(up.size), one, out.reshape(out.size))
    return out


@lowers("swiglu", "cpu")
def _lower_swiglu(gate, up):
    if swiglu(gate, up) is None:
        return None
    one = np.float32(1) if gate.dtype in HALF_DTYPES else gate.dtype.type(1)
    return Lowered(swiglu_compiled, (gate, up, one))


@register("swiglu_backward", "cpu", "numba", _FLOATS)
def swiglu_backward(grad, gate, up):
    """``(dgate, dup)`` of :func:`swiglu` for the incoming gradient; None if not handled."""
    if not _usable(grad, gate, up) or not grad.shape == gate.shape == up.shape:
        return None
    flat = _flat(gate)
    dgate, dup = np.empty_like(flat), np.empty_like(flat)
    _swiglu_grad(_flat(grad), flat, _exp_neg_abs(flat), _flat(up), gate.dtype.type(1), dgate,
                 dup)
    return dgate.reshape(gate.shape), dup.reshape(gate.shape)


# ---------------------------------------------------------------------- rotary embedding
@_compile(inline=True)
def _rotated(a, c, b, s, out):
    """``a c + b s`` rounded as the composition's three ops round in out's dtype: nothing
    more for floats; each product and the sum rounded for 16-bit floats (their bits, read
    and written through .cpu_half)."""
    ac = widen(narrow(widen(a) * widen(c), out))
    bs = widen(narrow(widen(b) * widen(s), out))
    return narrow(ac + bs, out)


@_compile
def _rotary(x, cos, sin, backward, out):
    # x (B, H, T, D) in any layout (a head split's view); cos and sin (B or 1, H or 1, T, D);
    # out contiguous. Forward: x cos + roll(x, half) sin; backward: x cos + roll(x sin, half).
    B, H, T, D = x.shape
    half = D // 2
    for b in range(B):
        cb = b if cos.shape[0] > 1 else 0
        for h in range(H):
            ch = h if cos.shape[1] > 1 else 0
            for t in range(T):
                c = cos[cb, ch, t]
                s = sin[cb, ch, t]
                xr = x[b, h, t]
                o = out[b, h, t]
                if backward:
                    for i in range(half):
                        o[i] = _rotated(xr[i], c[i], xr[i + half], s[i + half], out)
                        o[i + half] = _rotated(xr[i + half], c[i + half], xr[i], s[i], out)
                else:
                    for i in range(half):
                        o[i] = _rotated(xr[i], c[i], xr[i + half], s[i], out)
                        o[i + half] = _rotated(xr[i + half], c[i + half], xr[i], s[i + half],
                                               out)


def _rotary_shapes(x, cos, sin):
    """``(x's shape, the tables' shape)`` made four-dimensional for :func:`_rotary`, or None
    for what it does not read."""
    if (not (_usable(x, cos, sin) or _halves(x, cos, sin)) or not 2 <= x.ndim <= 4
            or x.shape[-1] % 2
            or cos.shape != sin.shape or cos.ndim > x.ndim):
        return None
    four = (1,) * (4 - x.ndim) + x.shape
    table = (1,) * (4 - cos.ndim) + cos.shape
    if table[2:] != four[2:] or any(t not in (1, n) for t, n in zip(table[:2], four[:2])):
        return None
    return four, table


@register("rotary_embedding", "cpu", "numba", _FLOATS + tuple(HALF_DTYPES))
def rotary_embedding(x, cos, sin, backward: bool):
    """``x * cos + roll(x, half, -1) * sin`` over the last (even) dimension, or with
    ``backward`` its transpose applied to a gradient ``x``: ``x * cos + roll(x * sin, half,
    -1)``. ``x`` has two to four dimensions and may be a strided view (a head split); ``cos``
    and ``sin``, of one shape, are (T, D) tables or broadcast over x's heads (B, 1, T, D). The
    result is contiguous; None if not handled."""
    shapes = _rotary_shapes(x, cos, sin)
    if shapes is None:
        return None
    four, table = shapes
    out = np.empty(four, x.dtype)
    _rotary(_contiguous(x.reshape(four)), as_bits(cos.reshape(table)),
            as_bits(sin.reshape(table)), bool(backward), as_bits(out))
    return out.reshape(x.shape)


def _contiguous(x):
    """x's bits in a C-contiguous array (a copy of a head split's view): the loops over its
    rows then vectorise, where a strided view's are element by element (a bfloat16 prompt's
    queries: 138 -> 29 us, the copy included)."""
    return as_bits(np.ascontiguousarray(x))


@prepares("rotary_embedding", "cpu")
def _prepare_rotary_embedding(x, cos, sin, backward: bool):
    """:func:`rotary_embedding` for later calls on arrays of these shapes, layouts and dtype."""
    shapes = _rotary_shapes(x, cos, sin)
    if shapes is None:
        return None
    four, table = shapes
    layout = (x.shape, x.strides, cos.shape, cos.strides, sin.strides, x.dtype)

    def prepared(x_, cos_, sin_, backward_):
        if (x_.shape, x_.strides, cos_.shape, cos_.strides, sin_.strides, x_.dtype) != layout \
                or cos_.dtype != layout[5] or sin_.dtype != layout[5]:
            return None
        out = np.empty(four, x_.dtype)
        _rotary(_contiguous(x_.reshape(four)), as_bits(cos_.reshape(table)),
                as_bits(sin_.reshape(table)), bool(backward_), as_bits(out))
        return out.reshape(layout[0])
    return prepared


@_compile
def rotary_compiled(x, cos, sin, table):
    """:func:`rotary_embedding` (forward) inside a compiled step, for a 4-d x."""
    out = np.empty(x.shape, x.dtype)
    _rotary(np.ascontiguousarray(x), np.ascontiguousarray(cos).reshape(table),
            np.ascontiguousarray(sin).reshape(table), False, out)   # (see _contiguous)
    return out


@lowers("rotary_embedding", "cpu")
def _lower_rotary_embedding(x, cos, sin, backward: bool):
    shapes = _rotary_shapes(x, cos, sin)
    if shapes is None or backward or x.ndim != 4:
        return None
    return Lowered(rotary_compiled, (x, cos, sin, shapes[1]))


# ---------------------------------------------------------------------- RMS norm
@_compile
def _rms_norm_fwd(x, w, eps, y, rstd):
    # x, y: (rows, n); w: (n,) or (0,); floats, or 16-bit floats' bits (.cpu_half): each row
    # widened exactly into float32, normalised (and weighted) in float32, rounded once. The
    # mean square accumulates in float64
    rows, n = x.shape
    acc = np.empty(LANES, np.float64)
    scratch = np.empty(n, rstd.dtype)
    for r in range(rows):
        row = widened_into(x[r], scratch)   # (the row itself for floats)
        rstd[r] = 1.0 / math.sqrt(lane_sum_squares(row, 0.0, acc) / n + eps)
        iv = rstd[r]  # in the computing dtype from here on
        for j in range(n):
            v = row[j] * iv
            y[r, j] = narrow(v * widen(w[j]) if w.size else v, y)


@_compile
def _rms_norm_bwd(g, x, rstd, w, dx, dw):
    # dx = rstd * (g w - xhat * mean(g w xhat)); dw = sum g xhat (the row sum in lanes)
    rows, n = x.shape
    full = n - n % LANES
    acc = np.empty(LANES, np.float64)
    for r in range(rows):
        iv = rstd[r]
        acc[:] = -0.0
        for j0 in range(0, full, LANES):
            for lane in range(LANES):
                j = j0 + lane
                xhat = x[r, j] * iv
                gw = g[r, j] * w[j] if w.size else g[r, j]
                acc[lane] += gw * xhat
                if w.size:
                    dw[j] += g[r, j] * xhat
        a = fold_lanes(acc)
        for j in range(full, n):
            xhat = x[r, j] * iv
            gw = g[r, j] * w[j] if w.size else g[r, j]
            a += gw * xhat
            if w.size:
                dw[j] += g[r, j] * xhat
        a_mean = a / n
        for j in range(n):
            xhat = x[r, j] * iv
            gw = g[r, j] * w[j] if w.size else g[r, j]
            dx[r, j] = iv * (gw - xhat * a_mean)


@register("rms_norm", "cpu", "numba", _FLOATS + tuple(HALF_DTYPES))
def rms_norm(x, weight, eps: float):
    """RMS norm over the last dimension: ``(y, rstd)``; None if not handled.

    ``rstd`` (1/sqrt(mean(x^2) + eps)) has shape ``x.shape[:-1]`` and feeds
    :func:`rms_norm_backward`. float16 and bfloat16 (x and the weight of one dtype) as
    PyTorch computes them: in float32, the weight's product included, rounded once; their
    ``rstd`` is float32. One call where the composition is seven ops (a bfloat16 LLaMA
    normalises twice a layer).
    """
    if x.ndim == 0 or not (_usable(x, *([] if weight is None else [weight]))
                           or _halves(x, *([] if weight is None else [weight]))):
        return None
    n = x.shape[-1]
    x2 = as_bits(_flat(x)).reshape(-1, n)
    y = np.empty(x2.shape, x2.dtype)
    rstd = np.empty(x2.shape[0], _computed_in(x.dtype))
    w = np.empty(0, x2.dtype) if weight is None else as_bits(_flat(weight))
    _rms_norm_fwd(x2, w, float(eps), y, rstd)
    return y.view(x.dtype).reshape(x.shape), rstd.reshape(x.shape[:-1])


def _computed_in(dtype) -> np.dtype:
    """The dtype a kernel computes ``dtype``'s values in: float32 for the 16-bit floats."""
    return np.dtype(np.float32) if dtype in HALF_DTYPES else dtype


@prepares("rms_norm", "cpu")
def _prepare_rms_norm(x, weight, eps: float):
    """:func:`rms_norm` for later calls on contiguous arrays of x's shape and dtype."""
    if (rms_norm(x, weight, eps) is None or not x.flags.c_contiguous
            or not (weight is None or weight.flags.c_contiguous)):
        return None
    shape, dtype, n = x.shape, x.dtype, x.shape[-1]
    rows = x.size // n if n else 0
    bits = HALF_DTYPES.get(dtype, dtype)
    w = np.empty(0, bits) if weight is None else as_bits(weight.reshape(-1))   # a view

    def prepared(x_, weight_, eps_):
        if (x_.shape != shape or x_.dtype != dtype or not x_.flags.c_contiguous
                or weight_ is not weight):
            return None
        y = np.empty(shape, dtype)
        rstd = np.empty(rows, _computed_in(dtype))
        _rms_norm_fwd(as_bits(x_).reshape(rows, n), w, float(eps_),
                      as_bits(y).reshape(rows, n), rstd)
        return y, rstd.reshape(shape[:-1])
    return prepared


@_compile
def rms_norm_compiled(x, w, eps):
    """:func:`rms_norm` inside a compiled step: ``(y, rstd)`` (x and w: floats, or 16-bit
    floats' bits)."""
    n = x.shape[-1]
    rows = x.size // n
    y = np.empty(x.shape, x.dtype)
    rstd = np.empty(rows, widened(w[:0]).dtype)
    _rms_norm_fwd(np.ascontiguousarray(x).reshape((rows, n)), w, eps, y.reshape((rows, n)), rstd)
    return y, rstd


@lowers("rms_norm", "cpu")
def _lower_rms_norm(x, weight, eps: float):
    if rms_norm(x, weight, eps) is None or x.shape[-1] == 0:
        return None
    w = np.empty(0, x.dtype) if weight is None else np.ascontiguousarray(weight).reshape(-1)
    if weight is not None and w.base is None and w is not weight:
        return None   # a copy of the weight would not follow changes made to it
    return Lowered(rms_norm_compiled, (x, w, float(eps)))


@register("rms_norm_backward", "cpu", "numba", _FLOATS)
def rms_norm_backward(grad, x, rstd, weight):
    """Gradients ``(dx, dweight)`` of :func:`rms_norm` (dweight None without a weight)."""
    if not _usable(grad, x, rstd, *([] if weight is None else [weight])) or grad.shape != x.shape:
        return None
    n = x.shape[-1]
    x2, g2 = _flat(x).reshape(-1, n), _flat(grad).reshape(-1, n)
    dx = np.empty_like(x2)
    dw = np.zeros(n if weight is not None else 0, np.float64)
    _rms_norm_bwd(g2, x2, _flat(rstd), np.empty(0, x.dtype) if weight is None else _flat(weight),
                  dx, dw)
    return dx.reshape(x.shape), None if weight is None else dw.astype(x.dtype)


# ---------------------------------------------------------------------- cross entropy
@_compile
def _minus_rows(x, top, shifted):
    rows, n = x.shape
    for r in range(rows):
        m = top[r]
        for j in range(n):
            shifted[r, j] = x[r, j] - m


@_compile
def _cross_entropy_rows(x, e, target, ignore_index, top, zero, loss, lse):
    # loss = log(sum(exp(x - max))) - (x - max)[target]: -log_softmax(x)[target]
    rows, n = x.shape
    acc = np.empty(LANES, x.dtype)
    for r in range(rows):
        log_s = np.log(lane_sum(e[r], acc))
        lse[r, 0] = top[r]
        lse[r, 1] = log_s
        t = target[r]
        if t == ignore_index or t < 0 or t >= n:  # (the caller checked the range)
            loss[r] = zero
        else:
            loss[r] = log_s - (x[r, t] - top[r])


@_compile
def _log_softmax_rows(x, lse, out):
    rows, n = x.shape
    for r in range(rows):
        for j in range(n):
            out[r, j] = (x[r, j] - lse[r, 0]) - lse[r, 1]


@_compile
def _scale_rows_less_target(p, target, scale):
    # p = softmax(x) in place -> scale * (p - one_hot(target))
    rows, n = p.shape
    for r in range(rows):
        s = scale[r]
        for j in range(n):
            p[r, j] *= s
        t = target[r]
        if 0 <= t < n:
            p[r, t] -= s


def _rows_of_classes(x, target) -> bool:
    return x.ndim == 2 and x.shape[1] > 0 and target.shape == x.shape[:1] and target.dtype.kind in "iu"


@register("cross_entropy", "cpu", "numba", _FLOATS)
def cross_entropy(x, target, ignore_index: int):
    """Per-row cross entropy of logits x (rows, classes) against class indices (rows,), all in
    range or ``ignore_index`` (the caller checks): ``(loss, lse)``, loss in x's dtype and an
    ignored row's 0; None if not handled.

    ``lse``, what :func:`cross_entropy_backward` reads, is the log-sum-exp of each row in two
    parts, (rows, 2): the row's maximum and the log of its sum of ``exp(x - max)``. Added up
    they would round (float32 keeps three decimals at 1e4), and softmax's backward, ``exp(x -
    lse)``, would be off by as much, so backward subtracts them one at a time as log_softmax
    does.
    """
    if not _usable(x) or not _rows_of_classes(x, target):
        return None
    x = np.ascontiguousarray(x)
    rows = x.shape[0]
    loss, lse = np.empty(rows, x.dtype), np.empty((rows, 2), x.dtype)
    n = _row_chunks(x)
    in_threads(_cross_entropy_chunk, (x, target.astype(np.int64, copy=False),
                                      int(ignore_index), loss, lse), n, n)
    return loss, lse


def _cross_entropy_chunk(x, target, ignore_index, loss, lse, c, n_chunks):
    """:func:`cross_entropy` of chunk ``c`` of ``n_chunks`` of the rows (a thread's share: the
    steps below release the GIL). Each row's maximum by NumPy's vectorised max (a compiled loop
    of max(m, x) compares one value at a time: 256 x 1000 float32 logits, 320 against 37 us;
    NumPy's broadcast subtraction took 120 us, the compiled one 55), then NumPy's exp (the
    module docstring)."""
    rows = _chunk_of_rows(x.shape[0], c, n_chunks)
    x = x[rows]
    top = x.max(axis=1)
    e = np.empty_like(x)
    _minus_rows(x, top, e)
    np.exp(e, out=e)
    _cross_entropy_rows(x, e, target[rows], ignore_index, top, x.dtype.type(0), loss[rows],
                        lse[rows])


#: Logits of this many values and more have their rows split over numba's threads (each
#: row's arithmetic is its own: the same bits). F.cross_entropy forward and backward of
#: float32 logits, an AMD EPYC (Zen 4), one chunk against two, medians: 256 x 1000 569 / 568
#: us, 512 x 1000 888 / 752 us, 1024 x 1000 1.66 / 1.09 ms, 4096 x 1000 8.0 / 4.3 ms, 256 x
#: 32000 16.7 / 9.6 ms, 1024 x 50257 282 / 162 ms (torch 2.13, two threads: 188 ms).
CROSS_ENTROPY_THREADS_FROM = 1 << 19


def _row_chunks(x) -> int:
    """How many chunks of rows (one per thread) cross entropy splits ``x`` into."""
    if x.size < CROSS_ENTROPY_THREADS_FROM:
        return 1
    return max(1, min(x.shape[0], numba.get_num_threads()))


def _chunk_of_rows(rows: int, c: int, n_chunks: int) -> slice:
    step = -(-rows // n_chunks)
    return slice(min(rows, c * step), min(rows, (c + 1) * step))


@register("cross_entropy_backward", "cpu", "numba", _FLOATS)
def cross_entropy_backward(x, target, lse, scale):
    """``scale[r] * (softmax(x[r]) - one_hot(target[r]))``, softmax from the forward's
    log-sum-exp parts; None if not handled."""
    if not _usable(x, lse, scale) or not _rows_of_classes(x, target) \
            or lse.shape != target.shape + (2,) or scale.shape != target.shape:
        return None
    dx = np.empty(x.shape, x.dtype)
    n = _row_chunks(x)
    in_threads(_cross_entropy_backward_chunk,
               (np.ascontiguousarray(x), np.ascontiguousarray(lse),
                target.astype(np.int64, copy=False), np.ascontiguousarray(scale), dx), n, n)
    return dx


def _cross_entropy_backward_chunk(x, lse, target, scale, dx, c, n_chunks):
    """:func:`cross_entropy_backward` of chunk ``c`` of ``n_chunks`` of the rows."""
    rows = _chunk_of_rows(x.shape[0], c, n_chunks)
    out = dx[rows]
    _log_softmax_rows(x[rows], lse[rows], out)
    np.exp(out, out=out)
    _scale_rows_less_target(out, target[rows], scale[rows])


# ---------------------------------------------------------------------- optimizer steps
def _writeable(*arrays) -> bool:
    """Whether the arrays an optimizer step writes may be written (a parameter on read-only
    memory is the composition's to refuse, with gradient's error)."""
    return all(a.flags.writeable for a in arrays)


@_compile
def _adam_step(p, g, m, v, vmax, decay, l2, w1, w1_minus_one, b2, one_minus_b2, bc2, eps,
               neg_step, maximize, amsgrad):
    # The same operations, in the same order and precision, as PyTorch's single-tensor Adam
    # (and gradient.optim.adam's composition of it): lerp_, mul_ then addcmul_, and addcdiv_,
    # each fused multiply-add where PyTorch's kernels make one (gradient.backends.cpu_fma)
    for i in range(p.size):
        gi = -g[i] if maximize else g[i]
        pi = p[i] * decay
        if l2 != 0:
            gi = fused_multiply_add(l2, p[i], gi)                       # grad.add(p, alpha=l2)
        diff = gi - m[i]
        mi = (fused_multiply_add(w1, diff, m[i]) if abs(w1) < 0.5       # m.lerp_(grad, w1)
              else fused_multiply_add(w1_minus_one, diff, gi))
        vi = fused_multiply_add(one_minus_b2 * gi, gi, v[i] * b2)       # v*b2 + (1-b2)*g*g
        second = vi
        if amsgrad:
            second = max(vmax[i], vi)
            vmax[i] = second
        m[i] = mi
        v[i] = vi
        p[i] = pi + (neg_step * mi) / (math.sqrt(second) / bc2 + eps)  # addcdiv_


@register("adam_step", "cpu", "numba", _FLOATS)
def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, *, lr, beta1, beta2, eps,
              weight_decay, decoupled_weight_decay, maximize, step):
    """One Adam/AdamW update of raw arrays in place (``step`` already counts this update).

    Returns True when done, None when the arrays are not handled (the caller then composes).
    """
    arrays = [param, grad, exp_avg, exp_avg_sq] + ([max_exp_avg_sq] if max_exp_avg_sq is not None
                                                   else [])
    if (not _usable(*arrays) or len({a.shape for a in arrays}) != 1
            or not all(a.flags.c_contiguous for a in arrays)      # updated in place: no copies
            or not _writeable(param, *arrays[2:])):
        return None
    k = param.dtype.type
    decay = 1 - lr * weight_decay if weight_decay != 0 and decoupled_weight_decay else 1.0
    l2 = weight_decay if weight_decay != 0 and not decoupled_weight_decay else 0.0
    w1 = 1 - beta1
    bc2 = (1 - beta2 ** step) ** 0.5
    amsgrad = max_exp_avg_sq is not None
    vmax = max_exp_avg_sq.reshape(-1) if amsgrad else np.empty(0, param.dtype)
    _adam_step(
        param.reshape(-1), grad.reshape(-1), exp_avg.reshape(-1), exp_avg_sq.reshape(-1), vmax,
        k(decay), k(l2), k(w1), k(w1) - k(1), k(beta2), k(1 - beta2), k(bc2), k(eps),
        k(-(lr / (1 - beta1 ** step))), bool(maximize), amsgrad)
    return True


@_compile
def _sgd_step(p, g, buf, weight_decay, momentum, keep, neg_lr, first, nesterov, maximize):
    # The operations of PyTorch's single-tensor SGD (and gradient.optim.sgd's composition of
    # it), in order and in the parameter's precision: add with alpha a fused multiply-add as
    # PyTorch's kernels make it, mul_ one rounding. ``buf`` is empty without momentum.
    for i in range(p.size):
        gi = -g[i] if maximize else g[i]
        if weight_decay != 0:
            gi = fused_multiply_add(weight_decay, p[i], gi)          # grad.add(p, alpha=wd)
        if buf.size != 0:
            # the buffer starts at the gradient itself, undamped; then
            # buf.mul_(momentum).add_(grad, alpha=1 - dampening)
            bi = gi if first else fused_multiply_add(keep, gi, buf[i] * momentum)
            buf[i] = bi
            gi = fused_multiply_add(momentum, bi, gi) if nesterov else bi
        p[i] = fused_multiply_add(neg_lr, gi, p[i])                  # p.add_(grad, alpha=-lr)


@_compile(parallel=True)
def _sgd_in_chunks(p, g, buf, weight_decay, momentum, keep, neg_lr, first, nesterov, maximize,
                   n_chunks):
    """:func:`_sgd_step` over ``n_chunks`` chunks on numba's threads (see
    :data:`SGD_THREADS_FROM`)."""
    step = (p.size + n_chunks - 1) // n_chunks
    for c in numba.prange(n_chunks):
        a, b = min(p.size, c * step), min(p.size, (c + 1) * step)
        _sgd_step(p[a:b], g[a:b], buf[a:b] if buf.size != 0 else buf, weight_decay, momentum,
                  keep, neg_lr, first, nesterov, maximize)


#: Parameters of this many values and more are updated on numba's threads, in chunks (an
#: element's arithmetic does not depend on the chunk: the same bits). The step streams memory
#: (or L2), which one core does not fill. float32, best of 5, an AMD EPYC (Zen 4), one thread
#: against two, plain and with momentum: 32,768 values 6.2 / 7.9 against 7.7 / 9.1 us; 65,536
#: 8.9 / 15.2 against 9.3 / 12.7 us; 147,456 18.7 / 30.8 against 14.6 / 23.5 us; 10M 3.2 / 4.9
#: against 2.0 / 3.3 ms.
SGD_THREADS_FROM = 1 << 16


@register("sgd_step", "cpu", "numba", _FLOATS)
def sgd_step(param, grad, momentum_buffer, *, lr, momentum, dampening, weight_decay, nesterov,
             maximize, first):
    """One SGD update of raw arrays in place, with PyTorch's rule and bits; with momentum,
    ``momentum_buffer`` is updated too (``first``: set to the step's gradient, the buffer's
    start). Returns True when done, None when the arrays are not handled (the caller then
    composes).

    Example: ``sgd_step(p, g, None, lr=0.1, momentum=0, dampening=0, weight_decay=0,
    nesterov=False, maximize=False, first=False)``
    """
    # (a step per parameter: the checks are written out, as they cost more than a small
    # parameter's arithmetic)
    buf = momentum_buffer if momentum != 0 else grad
    if not (_usable(param, grad, buf) and param.shape == grad.shape == buf.shape
            and param.flags.c_contiguous and grad.flags.c_contiguous
            and buf.flags.c_contiguous                # updated in place: no copies
            and _writeable(param, buf)):
        return None
    k = param.dtype.type
    buf = buf.reshape(-1) if momentum != 0 else np.empty(0, param.dtype)
    args = (param.reshape(-1), grad.reshape(-1), buf, k(weight_decay), k(momentum),
            k(1 - dampening), k(-lr), bool(first), bool(nesterov), bool(maximize))
    threads = numba.get_num_threads() if param.size >= SGD_THREADS_FROM else 1
    if threads == 1:
        _sgd_step(*args)
    else:
        _sgd_in_chunks(*args, threads)
    return True


@_compile
def _rmsprop_step(p, g, v, a, buf, l2, alpha, one_minus_alpha, w, w_minus_one, eps, momentum,
                  neg_lr, maximize):
    # The operations of PyTorch's single-tensor RMSprop (and gradient.optim.rmsprop's
    # composition of it), in order and in the parameter's precision: mul_ then addcmul_, lerp_
    # and addcmul for the centred variance, sqrt, add_, then addcdiv_ (or mul_, addcdiv_ and
    # add_ with momentum). ``a`` (centred) and ``buf`` (momentum) are empty when not used.
    for i in range(p.size):
        gi = -g[i] if maximize else g[i]
        if l2 != 0:
            gi = fused_multiply_add(l2, p[i], gi)                       # grad.add(p, alpha=l2)
        vi = fused_multiply_add(one_minus_alpha * gi, gi, v[i] * alpha)  # v*alpha + (1-alpha)*g*g
        v[i] = vi
        if a.size != 0:
            diff = gi - a[i]
            ai = (fused_multiply_add(w, diff, a[i]) if abs(w) < 0.5      # a.lerp_(grad, 1-alpha)
                  else fused_multiply_add(w_minus_one, diff, gi))
            a[i] = ai
            vi = fused_multiply_add(-ai, ai, vi)                        # v.addcmul(a, a, value=-1)
        avg = math.sqrt(vi) + eps
        if buf.size != 0:
            bi = buf[i] * momentum + gi / avg                           # buf.mul_().addcdiv_()
            buf[i] = bi
            p[i] = fused_multiply_add(neg_lr, bi, p[i])                 # p.add_(buf, alpha=-lr)
        else:
            p[i] = p[i] + (neg_lr * gi) / avg                           # p.addcdiv_(g, avg, -lr)


@register("rmsprop_step", "cpu", "numba", _FLOATS)
def rmsprop_step(param, grad, square_avg, grad_avg, momentum_buffer, *, lr, alpha, eps,
                 weight_decay, momentum, maximize):
    """One RMSprop update of raw arrays in place (``grad_avg`` None unless centred,
    ``momentum_buffer`` None without momentum), with the bits of its composition. Returns True
    when done, None when the arrays are not handled (the caller then composes)."""
    arrays = [param, grad, square_avg] + [x for x in (grad_avg, momentum_buffer) if x is not None]
    if (not _usable(*arrays) or len({x.shape for x in arrays}) != 1
            or not all(x.flags.c_contiguous for x in arrays)      # updated in place: no copies
            or not _writeable(param, *arrays[2:])):
        return None
    k = param.dtype.type
    none = np.empty(0, param.dtype)
    w = k(1 - alpha)
    _rmsprop_step(param.reshape(-1), grad.reshape(-1), square_avg.reshape(-1),
                  none if grad_avg is None else grad_avg.reshape(-1),
                  none if momentum_buffer is None else momentum_buffer.reshape(-1),
                  k(weight_decay), k(alpha), k(1 - alpha), w, w - k(1), k(eps), k(momentum),
                  k(-lr), bool(maximize))
    return True


@_compile
def _adagrad_step(p, g, total, l2, eps, neg_lr, maximize):
    # PyTorch's single-tensor Adagrad (gradient.optim.adagrad's composition of it): addcmul_
    # with value 1, sqrt, add_, addcdiv_, in the parameter's precision
    for i in range(p.size):
        gi = -g[i] if maximize else g[i]
        if l2 != 0:
            gi = fused_multiply_add(l2, p[i], gi)                       # grad.add(p, alpha=l2)
        ti = fused_multiply_add(gi, gi, total[i])
        total[i] = ti
        p[i] = p[i] + (neg_lr * gi) / (math.sqrt(ti) + eps)


@register("adagrad_step", "cpu", "numba", _FLOATS)
def adagrad_step(param, grad, state_sum, *, lr, weight_decay, eps, maximize):
    """One dense Adagrad update of raw arrays in place, ``lr`` already decayed for this step,
    with the bits of its composition. Returns True when done, None when the arrays are not
    handled (the caller then composes)."""
    if (not _usable(param, grad, state_sum) or not param.shape == grad.shape == state_sum.shape
            or not (param.flags.c_contiguous and grad.flags.c_contiguous
                    and state_sum.flags.c_contiguous) or not _writeable(param, state_sum)):
        return None
    k = param.dtype.type
    _adagrad_step(param.reshape(-1), grad.reshape(-1), state_sum.reshape(-1), k(weight_decay),
                  k(eps), k(-lr), bool(maximize))
    return True


@_compile
def _adamax_step(p, g, m, u, l2, w, w_minus_one, b2, eps, neg_clr, maximize):
    # PyTorch's single-tensor Adamax (gradient.optim.adamax's composition of it), in order and
    # in the parameter's precision: lerp_, mul_, abs and + eps, maximum (NaN wins), addcdiv_
    for i in range(p.size):
        gi = -g[i] if maximize else g[i]
        if l2 != 0:
            gi = fused_multiply_add(l2, p[i], gi)                       # grad.add(p, alpha=l2)
        diff = gi - m[i]
        mi = (fused_multiply_add(w, diff, m[i]) if abs(w) < 0.5         # m.lerp_(grad, w)
              else fused_multiply_add(w_minus_one, diff, gi))
        m[i] = mi
        kept, fresh = u[i] * b2, abs(gi) + eps
        ui = kept if kept > fresh or kept != kept else fresh            # maximum
        u[i] = ui
        p[i] = p[i] + (neg_clr * mi) / ui                               # p.addcdiv_(m, u, -clr)


@register("adamax_step", "cpu", "numba", _FLOATS)
def adamax_step(param, grad, exp_avg, exp_inf, *, lr, beta1, beta2, eps, weight_decay,
                maximize, step):
    """One Adamax update of raw arrays in place (``step`` already counts this update), with
    the bits of its composition. Returns True when done, None when the arrays are not handled
    (the caller then composes)."""
    arrays = [param, grad, exp_avg, exp_inf]
    if (not _usable(*arrays) or len({x.shape for x in arrays}) != 1
            or not all(x.flags.c_contiguous for x in arrays)      # updated in place: no copies
            or not _writeable(param, exp_avg, exp_inf)):
        return None
    k = param.dtype.type
    w = k(1 - beta1)
    _adamax_step(param.reshape(-1), grad.reshape(-1), exp_avg.reshape(-1), exp_inf.reshape(-1),
                 k(weight_decay), w, w - k(1), k(beta2), k(eps), k(-(lr / (1 - beta1 ** step))),
                 bool(maximize))
    return True


# ---------------------------------------------------------------------- adding rows
@_compile
def _index_add_rows(out, ids, rows):
    for i in range(ids.shape[0]):
        r = ids[i]
        for j in range(rows.shape[1]):
            out[r, j] += rows[i, j]


@register("index_add_rows", "cpu", "numba", _FLOATS)
def index_add_rows(out, ids, values) -> bool:
    """``out[ids[i]] += values[i]`` for every i, in order (what ``np.add.at(out, ids, values)``
    does, with the same sums, ~10x faster): the gradient of an embedding table. ``ids`` is an
    integer array of any shape, ``values`` has shape ``ids.shape + out.shape[1:]``. Returns
    False (nothing done) for what the kernel does not handle: the caller falls back.
    """
    if not (_usable(out, values) and out.ndim >= 1 and out.flags.c_contiguous
            and isinstance(ids, np.ndarray) and ids.dtype.kind in "iu"
            and values.shape == ids.shape + out.shape[1:]):
        return False
    ids = ids.reshape(-1)
    if ids.size and (ids.min() < 0 or ids.max() >= out.shape[0]):
        return False  # negative ids wrap, out-of-range ones raise: NumPy's add.at handles both
    width = math.prod(out.shape[1:])
    _index_add_rows(out.reshape(out.shape[0], width), ids,
                    np.ascontiguousarray(values).reshape(ids.size, width))
    return True


@_compile
def _add_to_rows(out, row):
    rows, n = out.shape
    for r in range(rows):
        for j in range(n):
            out[r, j] += row[j]


@register("add_to_rows", "cpu", "numba", _FLOATS)
def add_to_rows(out, row) -> bool:
    """``out += row`` in place, ``row`` (n,) broadcast over the rows of ``out`` (..., n): a
    Linear layer's bias, added to its fresh product. NumPy's broadcasting loop takes about
    three times as long; returns False (nothing done) for what the kernel does not handle."""
    if not (_usable(out, row) and out.ndim >= 1 and row.ndim == 1 and out.flags.c_contiguous
            and out.shape[-1] == row.shape[0]):
        return False
    if out.size:      # (nothing to add to no values; reshape(-1, 0) could not say how many rows)
        _add_to_rows(out.reshape(-1, row.shape[0]), np.ascontiguousarray(row))
    return True


# ----------------------------------------------------------------------------- rounding
#: float32 arrays of fewer values are left to ml_dtypes' astype (this call costs about a
#: microsecond more; past it the loop is 4-5 times as fast: 64 x 1,536 values 40 -> 9 us).
ROUND_MIN_VALUES = 4096
#: What the rounding kernel takes the target type from (bfloat16's bits: int16).
_BFLOAT16_BITS = np.zeros(1, np.int16)


@register("round_to_bfloat16", "cpu", "numba", (np.dtype(np.float32),))
def round_to_bfloat16(x):
    """float32 ``x`` rounded to bfloat16 (nearest even; a NaN stays a quiet NaN, overflow gives
    infinity: ml_dtypes' bits), a new array of x's shape; None for small arrays (the caller's
    astype). A bfloat16 model rounds every op's float32 result so.

    Example: ``y = round_to_bfloat16(np.ones((64, 1536), np.float32))``
    """
    if type(x) is not np.ndarray or x.size < ROUND_MIN_VALUES:
        return None
    return narrowed(x, _BFLOAT16_BITS).view(ml_dtypes.bfloat16)
