"""The int8 products of :mod:`.interleaved` in NumPy, with the compiled kernels' bits: what a
first run on a machine computes while those kernels are being compiled.

Compiling the int8 kernels takes seconds (about 7 of SmolLM2-135M's first token's 12 on 2
cores). The ``gradient`` commands compile them in a child process instead
(:mod:`gradient.capture.background`) and meanwhile compute the same products here: the same
bits, so a first run's text is every later run's. Slower than the kernels (a few times for a
decode step), and used only until they are in numba's disk cache.

Why NumPy can give the kernels' bits:

* **the activations** are quantized per 32 values with the kernel's float32 operations, one
  rounding each (``max|x|``, a division, ``rint(x * inv)``, the scales rounded to float16:
  NumPy's conversion rounds as the kernel's bit arithmetic does);
* **each block's sum of integer products is exact**: at most 32 * 255 * 128 < 2**24 in
  magnitude, so a float32 matrix product of the stored codes and the quantized activations
  gives every block's integer exactly, whatever order or FMA BLAS uses (and so does taking
  the codes' offset off it, ``offset * sum(x_q)``);
* **the float epilogue** runs in the kernel's order: per block, in block order,
  ``acc += (scale * x_scale) * sum`` (``+ minimum * x_sum`` for types with a minimum), every
  operation a float32 rounding, without FMA (the kernels are compiled without fastmath).

``tests/quant/test_int8_numpy.py`` checks the bits against the kernels for every repacked type.

Example::

    >>> quantized = quantize_rows(x)                              # x (n, k) float32
    >>> product(quantized, *_int8_head(w), y)                     # y (n, w.out_features)
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

from .code_layouts import NIBBLES

__all__ = ["quantize_rows", "product", "block_factors", "as_floats"]

#: Rows of the weight multiplied at a time: the codes widened to float32 take 4 bytes a value.
_ROWS_AT_ONCE = 8192


def quantize_rows(x: np.ndarray, per_token: bool = False) -> tuple:
    """``(xq, xd, xs, xs16, xsum, xsum16)`` of contiguous float32 rows ``x`` (n, k): the
    kernel's ``_quantized`` (see :func:`gradient.quant.interleaved.quantize_activations`);
    ``per_token``: one scale a row, kept in float32, as the kernel's per-token quantizer."""
    n, k = x.shape
    blocks = x.reshape(n, k // 32, 32)
    amax = np.abs(blocks).max(axis=2) if k else np.zeros((n, 0), np.float32)
    if per_token and k:
        amax = np.repeat(amax.max(axis=1, keepdims=True), k // 32, axis=1)
    d = amax / np.float32(127.0)
    inv = np.zeros_like(amax)
    np.divide(np.float32(127.0), amax, out=inv, where=amax > 0)
    q = np.rint(blocks * inv[:, :, None]).astype(np.int32)
    s0, s1 = q[:, :, :16].sum(axis=2), q[:, :, 16:].sum(axis=2)
    xsum = (s0 + s1).astype(np.int32)
    xs = (s0 + s1).astype(np.float32) * d
    xs16 = np.stack([s0.astype(np.float32) * d, s1.astype(np.float32) * d], axis=2)
    xsum16 = np.stack([s0, s1], axis=2).astype(np.int32).reshape(n, k // 16)
    if not per_token:                 # llama.cpp's block scales and sums are float16
        d, xs = _round_f16(d), _round_f16(xs)
    return (q.astype(np.int8).reshape(n, k), d, xs, xs16.reshape(n, k // 16), xsum, xsum16)


def _round_f16(a: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):             # beyond float16's range: inf, as the kernel
        return a.astype(np.float16).astype(np.float32)


def as_floats(bits: np.ndarray) -> np.ndarray:
    """A repacked weight's scales as the floats they are: float16 kept as uint16 bits,
    bfloat16 as int16 (gradient.backends.cpu_half's convention), float32 as it is."""
    if bits.dtype == np.uint16:
        return bits.view(np.float16)
    if bits.dtype == np.int16:
        return bits.view(ml_dtypes.bfloat16)
    return bits


def _widened(bits: np.ndarray) -> np.ndarray:
    """Scales or minimums as float32 (exact)."""
    return as_floats(bits).astype(np.float32)


def block_factors(scale, minimum, sub, has_min: bool) -> tuple:
    """``(scale, minimum)`` of every block, float32 (groups, blocks, lanes), from a repacked
    weight's arrays: as they are stored (``sub`` None), or for a k-quant each super-block's
    ``d`` and ``dmin`` times the block's integers, ``d * sc`` and ``-(dmin * m)``, or with zero
    points (``sub`` of 3 dimensions) ``-(scale * z)``: the float32 products the kernels form
    (see :mod:`gradient.quant.interleaved`). ``minimum`` is None without ``has_min``. The
    stored scales and minimums are float16 bits (uint16), widened exactly."""
    scale = _widened(scale)
    if sub is not None and sub.ndim == 3:     # zero points: the minimum is -(scale * z)
        return scale, -(scale * sub.astype(np.float32))
    minimum = _widened(minimum) if has_min else None
    if sub is None:
        return scale, minimum
    per = sub.shape[1] // scale.shape[1]
    s = np.repeat(scale, per, axis=1) * sub[:, :, 0].astype(np.float32)
    if not has_min:
        return s, None
    return s, -(np.repeat(minimum, per, axis=1) * sub[:, :, 1].astype(np.float32))


def product(quantized: tuple, codes, scale, minimum, sub, offset: int, layout,
            y: np.ndarray) -> None:
    """``y = x @ W.T`` for the quantized rows of x (:func:`quantize_rows`) and the repacked
    weight's int8 arguments (``gradient.quant.interleaved._int8_head``: ``minimum`` None for
    the types without one, ``layout`` how the codes are read), as the kernel ``_int8_chunk``
    computes it."""
    nibble = layout.ndim == NIBBLES
    xq, xd, xs, xs16, xsum, xsum16 = quantized
    has_min = minimum is not None or (sub is not None and sub.ndim == 3)
    scale, minimum = block_factors(scale, minimum, sub, has_min)
    n = xq.shape[0]
    groups, blocks, quads, lanes, _ = codes.shape
    six = not nibble and quads == 3              # Q6_K's two planes (gradient.quant.interleaved)
    values = 32 if nibble else (16 if six else 4 * quads)
    # per block: which activation scale, which sum of activations the minimum takes, and
    # which integer sum the offset of the stored codes takes off
    x_scale = xd if values == 32 else xd[:, np.arange(blocks) // 2]
    x_sum = xs if values == 32 else xs16
    shift = ((offset * (xsum if values == 32 else xsum16).astype(np.int64)).astype(np.float32)
             if offset else None)
    x_blocks = xq.reshape(n, blocks, values).transpose(1, 0, 2).astype(np.float32)
    step = max(1, _ROWS_AT_ONCE // lanes)
    for g0 in range(0, groups, step):
        g1 = min(groups, g0 + step)
        rows = slice(g0 * lanes, min(y.shape[1], g1 * lanes))
        width = rows.stop - rows.start
        # (groups, blocks, values per byte plane, lanes): byte j of a block, natural order
        c = codes[g0:g1].transpose(0, 1, 2, 4, 3).reshape(g1 - g0, blocks, 4 * quads, lanes)
        if nibble:   # byte j holds value j in its low four bits, value 16 + j in its high
            w = np.concatenate([c & np.uint8(15), c >> np.uint8(4)], axis=2)
        elif six:    # the same for values j and 8 + j, then byte t of quad 2 the top two bits
            top = c[:, :, 8:12]     # of values t, t + 4, t + 8, t + 12
            high = np.concatenate([(top >> np.uint8(2 * u)) & np.uint8(3) for u in range(4)],
                                  axis=2)
            w = np.concatenate([c[:, :, :8] & np.uint8(15), c[:, :, :8] >> np.uint8(4)],
                               axis=2) | (high << np.uint8(4))
        else:
            w = c
        # (blocks, values, rows), exact in float32; the sums (blocks, n, rows) exact too
        w = w.transpose(1, 2, 0, 3).reshape(blocks, values, -1).astype(np.float32)
        sums = np.matmul(x_blocks, w)[:, :, :width]
        w_scale = scale[g0:g1].transpose(1, 0, 2).reshape(blocks, -1)[:, :width]
        w_min = (minimum[g0:g1].transpose(1, 0, 2).reshape(blocks, -1)[:, :width]
                 if has_min else None)
        acc = np.zeros((n, width), np.float32)
        with np.errstate(all="ignore"):          # inf and nan as the kernel makes them
            _epilogue(acc, sums, shift, w_scale, w_min, x_scale, x_sum, has_min)
        y[:, rows] = acc


def _epilogue(acc, sums, shift, w_scale, w_min, x_scale, x_sum, has_min) -> None:
    """The blocks' scaled sums added into acc in block order, as the kernel does."""
    for b in range(sums.shape[0]):
        s = sums[b] if shift is None else sums[b] - shift[:, b, None]
        t = (w_scale[b][None, :] * x_scale[:, b, None]) * s
        if has_min:
            t += w_min[b][None, :] * x_sum[:, b, None]
        acc += t
