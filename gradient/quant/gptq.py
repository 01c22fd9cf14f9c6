"""GPTQ: weights rounded to 3, 4 or 8 bits one input column at a time, each column's rounding
error spread over the columns not yet rounded so that the layer's outputs on calibration
inputs move as little as possible (Frantar et al., 2022, "GPTQ: Accurate Post-Training
Quantization for Generative Pre-trained Transformers").

For a linear layer with weight ``W`` (out, in) and calibration inputs ``X``, the output error
``||(W - Q) X||^2`` has the Hessian ``H = 2 X X^T`` (in, in). Column ``j`` is rounded to its
grid; the error ``e = (w_j - q_j) / [H^-1]_jj`` is taken back from the later columns through
the row ``j`` of the upper Cholesky factor of ``H^-1`` (the OBS update, in the order of the
columns); columns are processed in blocks of :data:`BLOCK_SIZE`, the updates of a block
applied to the columns after it at once (the "lazy batch" that makes it fast). Options, as in
the reference implementation:

* ``group_size``: one scale (and zero point) per group of that many consecutive input columns
  of a row, found when the pass reaches the group, from the weights as updated so far;
* ``sym``: a grid symmetric about zero (zero point at the middle code) instead of one spanning
  ``[min(w, 0), max(w, 0)]``;
* ``static_groups``: every group's grid found before the pass, from the original weights
  (the reference's option of that name; llm-compressor's GPTQ always does this);
* ``act_order``: columns taken in the order of decreasing ``H_jj`` (the inputs that matter
  most first); the groups then stay the consecutive columns of the layer, their grids static,
  so that the codes keep gradient's contiguous group layout (no ``g_idx`` permutation at run
  time);
* ``damp``: ``damp * mean(diag(H))`` added to the diagonal before the inversion; a column
  whose input was always zero is set to zero.

The result is a :class:`~gradient.quant.weight_only.PackedWeight`: 4 and 3 bits in the int4
layout (3-bit codes 0..7 with their zero points: 4 bits in memory, ``grid_bits=3`` so that a
checkpoint writes them in 3), 8 bits in the int8 layout
(symmetric only: its grid is ``max|w| / 127``). Scales are rounded to float16 before the codes
are chosen (the stored grid is the one the error is measured on).

:func:`gptq` quantizes a model: the calibration inputs are run one block at a time
(:mod:`.calibration`), each block's linear layers quantized from the Hessians of their inputs
and replaced by :class:`~gradient.quant.weight_only.WeightOnlyLinear` layers, whose outputs
the next block is calibrated on.

Example::

    >>> q = gradient.quant.gptq(model, [ids[i:i + 256] for i in range(0, 32768, 256)],
    ...                         bits=4, group_size=64)
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ArgumentValueError, ShapeError
from ..nn.module import Module
from .calibration import quantize_blocks
from .linear import _inverse
from .weight_only import PackedWeight, _check_groups, _readonly, pack_int4

__all__ = ["gptq", "gptq_quantize", "round_to_nearest", "fit_grid", "round_to_grid",
           "packed_codes", "BLOCK_SIZE"]

#: Columns per lazy batch (the reference's ``blocksize``); rounded up to a multiple of the group.
BLOCK_SIZE = 128


def fit_grid(w: np.ndarray, bits: int, sym: bool) -> tuple[np.ndarray, np.ndarray]:
    """The grids of groups of weights ``w`` (rows, groups, values a group): float16 scales and
    integer zero points (rows, groups). 8 bits: gradient's int8, symmetric, ``max|w| / 127``
    (zero points 0); else ``[min(w, 0), max(w, 0)]`` over ``2^bits - 1`` steps (``sym``: the
    range symmetric about 0, the zero point the middle code), as the reference's quantizer."""
    w = w.astype(np.float32)
    if bits == 8:
        return ((np.abs(w).max(axis=-1) / np.float32(127)).astype(np.float16),
                np.zeros(w.shape[:-1], np.int32))
    maxq = (1 << bits) - 1
    low = np.minimum(w.min(axis=-1), 0)
    high = np.maximum(w.max(axis=-1), 0)
    if sym:
        high = np.maximum(-low, high)
        low = np.where(low < 0, -high, low)
    flat = (low == 0) & (high == 0)              # an all-zero group: any grid, as GPTQ's
    low, high = np.where(flat, -1, low), np.where(flat, 1, high)
    scales = ((high - low) / np.float32(maxq)).astype(np.float16)
    if sym:
        zeros = np.full(scales.shape, (maxq + 1) // 2, np.int32)
    else:
        zeros = np.clip(np.rint(-low * _inverse(scales.astype(np.float32))), 0,
                        maxq).astype(np.int32)
    return scales, zeros


def round_to_grid(w: np.ndarray, scales: np.ndarray, zeros: np.ndarray,
                  bits: int) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, values)`` of weights ``w`` (rows, groups, values a group, or (rows,) with
    one group's grid) on the grids ``scales``, ``zeros``: codes as stored, values the float64
    weights they stand for."""
    scale = scales.astype(np.float32)
    if w.ndim == 3:
        scale, zeros = scale[..., None], zeros[..., None]
    x = w.astype(np.float32) * _inverse(scale)
    if bits == 8:
        q = np.clip(np.rint(x), -127, 127)
        return q, q.astype(np.float64) * scale
    q = np.clip(np.rint(x) + zeros, 0, (1 << bits) - 1)
    return q, (q - zeros).astype(np.float64) * scale


class _Grid:
    """Scales (float16) and zero points per group, and the codes of a column on them."""

    def __init__(self, bits: int, sym: bool, rows: int, groups: int):
        self.bits, self.sym = bits, sym
        self.scales = np.zeros((rows, groups), np.float16)
        self.zeros = np.zeros((rows, groups), np.int32)

    def fit(self, g: int, w: np.ndarray) -> None:
        """The grid of group ``g`` from its weights ``w`` (rows, columns of the group)."""
        scales, zeros = fit_grid(w[:, None, :], self.bits, self.sym)
        self.scales[:, g], self.zeros[:, g] = scales[:, 0], zeros[:, 0]

    def round(self, g: int, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(codes, values)`` of a column ``w`` (rows,) in group ``g``."""
        return round_to_grid(w, self.scales[:, g], self.zeros[:, g], self.bits)


def _upper_inverse_factor(h: np.ndarray) -> np.ndarray:
    """The upper Cholesky factor ``U`` of ``H^-1`` (``H^-1 = U^T U``), as the reference computes
    it (Cholesky of H, the inverse from it, Cholesky of that)."""
    lower = np.linalg.cholesky(h)
    inverse_lower = np.linalg.inv(lower)
    return np.linalg.cholesky(inverse_lower.T @ inverse_lower).T


def gptq_quantize(weight, hessian, bits: int = 4, group_size: int | None = 128,
                  sym: bool = False, act_order: bool = False, damp: float = 0.01,
                  block_size: int = BLOCK_SIZE, static_groups: bool = False) -> PackedWeight:
    """GPTQ of one weight (out, in) given the Hessian (in, in) of its inputs (``2 X X^T``;
    :meth:`~gradient.quant.calibration.InputStatistics.hessian`); see the module docstring.
    ``group_size=None``: one group per row.

    Example::

        >>> packed = gptq_quantize(w, stats.hessian(), bits=4, group_size=64)
        >>> WeightOnlyLinear(packed, bias)
    """
    if bits not in (3, 4, 8):
        raise ArgumentValueError(f"gptq: bits must be 3, 4 or 8, got {bits!r}")
    if bits == 8 and not sym:
        raise ArgumentValueError(
            "gptq: 8-bit codes use gradient's int8 layout, which is symmetric: "
            "pass sym=True")
    if not 0 <= damp < 1:
        raise ArgumentValueError(f"gptq: damp must be in [0, 1), got {damp!r}")
    w = np.array(weight, dtype=np.float64)
    h = np.array(hessian, dtype=np.float64)
    if w.ndim != 2 or h.shape != (w.shape[1], w.shape[1]):
        raise ShapeError(f"gptq: expected a weight (out, in) and a Hessian (in, in), got "
                         f"{w.shape} and {h.shape}")
    if not (np.isfinite(w).all() and np.isfinite(h).all()):
        raise ArgumentValueError("gptq: the weight or the Hessian has inf or NaN values")
    rows, k = w.shape
    g = k if group_size is None else int(group_size)
    _check_groups(w.shape, g, "gptq")
    if bits != 8 and g % 32:
        raise ArgumentValueError(
            f"gptq: {bits}-bit group_size must be a multiple of 32 (codes are "
            f"packed in blocks of 32), got {g}")
    block = g * math.ceil(block_size / g) if g <= block_size else g   # groups never straddle
    grid = _Grid(bits, sym, rows, k // g)

    dead = np.diag(h) == 0
    h[dead, dead] = 1
    w[:, dead] = 0
    static = static_groups or act_order
    if static:
        for group in range(k // g):           # the grids of the original weights
            grid.fit(group, w[:, group * g:(group + 1) * g])
    order = np.argsort(-np.diag(h), kind="stable") if act_order else np.arange(k)
    w, h = w[:, order], h[np.ix_(order, order)]
    h[np.diag_indices(k)] += damp * np.mean(np.diag(h))
    u = _upper_inverse_factor(h)

    codes = np.zeros((rows, k), np.int32)
    for b0 in range(0, k, block):
        b1 = min(b0 + block, k)
        w1 = w[:, b0:b1].copy()
        errors = np.zeros_like(w1)
        u1 = u[b0:b1, b0:b1]
        for i in range(b1 - b0):
            column = order[b0 + i]
            if not static and column % g == 0:
                grid.fit(column // g, w1[:, i:i + g])
            q, value = grid.round(column // g, w1[:, i])
            codes[:, column] = q
            error = (w1[:, i] - value) / u1[i, i]
            w1[:, i:] -= np.outer(error, u1[i, i:])
            errors[:, i] = error
        w[:, b1:] -= errors @ u[b0:b1, b1:]

    return packed_codes(codes, grid.scales, grid.zeros, bits, sym)


def packed_codes(codes, scales, zeros, bits: int, sym: bool) -> PackedWeight:
    """Codes (rows, in) on the grids ``scales``, ``zeros`` (rows, groups) of :func:`fit_grid`
    as a :class:`~gradient.quant.weight_only.PackedWeight`: 3 and 4 bits in the int4 layout
    (symmetric 4-bit codes are gradient's, offset by 8 with no zero points), 8 bits int8."""
    k = codes.shape[1]
    g = k // scales.shape[1]
    if bits == 8:
        qweight, zeros = codes.astype(np.int8), None
    elif sym and bits == 4:          # gradient's symmetric int4: codes offset by 8, no zeros
        qweight, zeros = pack_int4(codes.astype(np.uint8)), None
    else:
        qweight, zeros = pack_int4(codes.astype(np.uint8)), zeros.astype(np.uint8)
    return PackedWeight(_readonly(qweight), _readonly(scales),
                        None if zeros is None else _readonly(zeros), 8 if bits == 8 else 4, g, k,
                        bits if bits < 4 else None)


def round_to_nearest(weight, bits: int = 4, group_size: int | None = 128,
                     sym: bool = False) -> PackedWeight:
    """The weight (out, in) rounded to nearest on GPTQ's grid (:func:`fit_grid`): what GPTQ
    gives with nothing to compensate (an identity Hessian), and what AWQ rounds its scaled
    weights with.

    Example: ``round_to_nearest(w, bits=3, group_size=64).dequantize()``
    """
    w = np.asarray(weight, dtype=np.float32)
    if bits not in (3, 4, 8) or (bits == 8 and not sym):
        raise ArgumentValueError(f"round_to_nearest: bits must be 3 or 4, or 8 with sym=True; got "
                                 f"bits={bits!r}, sym={sym!r}")
    g = w.shape[-1] if group_size is None and w.ndim else group_size
    rows, k = _check_groups(w.shape, g, "round_to_nearest")
    if bits != 8 and g % 32:
        raise ArgumentValueError(
            f"round_to_nearest: {bits}-bit group_size must be a multiple of 32, "
            f"got {g}")
    groups = w.reshape(rows, k // g, g)
    scales, zeros = fit_grid(groups, bits, sym)
    codes, _ = round_to_grid(groups, scales, zeros, bits)
    return packed_codes(codes.reshape(rows, k), scales, zeros, bits, sym)


def gptq(model: Module, calib_ids, bits: int = 4, group_size: int | None = 128,
         sym: bool = False, act_order: bool = False, damp: float = 0.01, *,
         static_groups: bool = False, skip=("lm_head",), inplace: bool = False,
         progress: bool = True) -> Module:
    """The model with every ``nn.Linear`` of its repeated blocks (decoder layers) quantized by
    GPTQ from calibration token ids (a list of (T,) or (B, T) arrays: e.g. 128 sequences of
    256 tokens of text like the model's use), as :class:`~gradient.quant.weight_only.
    WeightOnlyLinear` layers; layers outside the blocks (the head) stay float. ``skip``,
    ``inplace``: as :func:`gradient.quant.quantize` (``inplace=False`` quantizes a copy);
    ``progress`` shows a bar over the blocks (tqdm, on stderr).

    Example::

        >>> q = gptq(model, calib, bits=4, group_size=64)
        >>> gradient.quant.quality.evaluate(model, q, held_out)["perplexity"]
    """
    return quantize_blocks(
        model, calib_ids, lambda name, weight, stats: gptq_quantize(
            weight, stats.hessian(), bits, group_size, sym, act_order, damp,
            static_groups=static_groups),
        skip=skip, inplace=inplace, progress=progress, where="gptq")
