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
* ``act_order``: columns taken in the order of decreasing ``H_jj`` (the inputs that matter
  most first); the groups then stay the consecutive columns of the layer, their grids found
  before the pass from the original weights (the reference's ``static_groups``), so that the
  codes keep gradient's contiguous group layout (no ``g_idx`` permutation at run time);
* ``damp``: ``damp * mean(diag(H))`` added to the diagonal before the inversion; a column
  whose input was always zero is set to zero.

The result is a :class:`~gradient.quant.weight_only.PackedWeight`: 4 and 3 bits in the int4
layout (3-bit codes 0..7 with their zero points: 4 bits in memory), 8 bits in the int8 layout
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

import copy
import math

import numpy as np

from ..errors import ShapeError
from ..nn.module import Module
from ..nn.modules.linear import Linear
from .calibration import calibrate_blocks, find_blocks
from .linear import _inverse
from .weight_only import (PackedWeight, WeightOnlyLinear, _check_groups, _readonly, _skipped,
                          pack_int4)

__all__ = ["gptq", "gptq_quantize", "BLOCK_SIZE"]

#: Columns per lazy batch (the reference's ``blocksize``); rounded up to a multiple of the group.
BLOCK_SIZE = 128


class _Grid:
    """Scales (float16) and zero points per group, and the codes of a column on them."""

    def __init__(self, bits: int, sym: bool, rows: int, groups: int):
        self.bits, self.sym = bits, sym
        self.maxq = 255 if bits == 8 else (1 << bits) - 1
        self.scales = np.zeros((rows, groups), np.float16)
        self.zeros = np.zeros((rows, groups), np.int32)

    def fit(self, g: int, w: np.ndarray) -> None:
        """The grid of group ``g`` from its weights ``w`` (rows, columns of the group)."""
        w = w.astype(np.float32)
        if self.bits == 8:            # gradient's int8: symmetric, codes -127..127
            scale = (np.abs(w).max(axis=1) / np.float32(127)).astype(np.float16)
            self.scales[:, g] = scale
            return
        low = np.minimum(w.min(axis=1), 0)
        high = np.maximum(w.max(axis=1), 0)
        if self.sym:
            high = np.maximum(-low, high)
            low = np.where(low < 0, -high, low)
        flat = (low == 0) & (high == 0)              # an all-zero group: any grid, as GPTQ's
        low, high = np.where(flat, -1, low), np.where(flat, 1, high)
        scale = ((high - low) / np.float32(self.maxq)).astype(np.float16)
        self.scales[:, g] = scale
        if self.sym:
            self.zeros[:, g] = (self.maxq + 1) // 2
        else:
            self.zeros[:, g] = np.clip(np.rint(-low * _inverse(scale.astype(np.float32))), 0,
                                       self.maxq)

    def round(self, g: int, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(codes, values)`` of a column ``w`` (rows,) in group ``g``: codes as stored, values
        the weights they stand for (float64)."""
        scale = self.scales[:, g].astype(np.float32)
        x = w.astype(np.float32) * _inverse(scale)
        if self.bits == 8:
            q = np.clip(np.rint(x), -127, 127)
            return q, q.astype(np.float64) * scale
        z = self.zeros[:, g]
        q = np.clip(np.rint(x) + z, 0, self.maxq)
        return q, (q - z).astype(np.float64) * scale


def _upper_inverse_factor(h: np.ndarray) -> np.ndarray:
    """The upper Cholesky factor ``U`` of ``H^-1`` (``H^-1 = U^T U``), as the reference computes
    it (Cholesky of H, the inverse from it, Cholesky of that)."""
    lower = np.linalg.cholesky(h)
    inverse_lower = np.linalg.inv(lower)
    return np.linalg.cholesky(inverse_lower.T @ inverse_lower).T


def gptq_quantize(weight, hessian, bits: int = 4, group_size: int | None = 128,
                  sym: bool = False, act_order: bool = False, damp: float = 0.01,
                  block_size: int = BLOCK_SIZE) -> PackedWeight:
    """GPTQ of one weight (out, in) given the Hessian (in, in) of its inputs (``2 X X^T``;
    :meth:`~gradient.quant.calibration.InputStatistics.hessian`); see the module docstring.
    ``group_size=None``: one group per row.

    Example::

        >>> packed = gptq_quantize(w, stats.hessian(), bits=4, group_size=64)
        >>> WeightOnlyLinear(packed, bias)
    """
    if bits not in (3, 4, 8):
        raise ValueError(f"gptq: bits must be 3, 4 or 8, got {bits!r}")
    if bits == 8 and not sym:
        raise ValueError("gptq: 8-bit codes use gradient's int8 layout, which is symmetric: "
                         "pass sym=True")
    if not 0 <= damp < 1:
        raise ValueError(f"gptq: damp must be in [0, 1), got {damp!r}")
    w = np.array(weight, dtype=np.float64)
    h = np.array(hessian, dtype=np.float64)
    if w.ndim != 2 or h.shape != (w.shape[1], w.shape[1]):
        raise ShapeError(f"gptq: expected a weight (out, in) and a Hessian (in, in), got "
                         f"{w.shape} and {h.shape}")
    if not (np.isfinite(w).all() and np.isfinite(h).all()):
        raise ValueError("gptq: the weight or the Hessian has inf or NaN values")
    rows, k = w.shape
    g = k if group_size is None else int(group_size)
    _check_groups(w.shape, g, "gptq")
    if bits != 8 and g % 32:
        raise ValueError(f"gptq: {bits}-bit group_size must be a multiple of 32 (codes are "
                         f"packed in blocks of 32), got {g}")
    block = g * math.ceil(block_size / g) if g <= block_size else g   # groups never straddle
    grid = _Grid(bits, sym, rows, k // g)

    dead = np.diag(h) == 0
    h[dead, dead] = 1
    w[:, dead] = 0
    if act_order:
        for group in range(k // g):           # static groups, from the original weights
            grid.fit(group, w[:, group * g:(group + 1) * g])
        order = np.argsort(-np.diag(h), kind="stable")
    else:
        order = np.arange(k)
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
            if not act_order and column % g == 0:
                grid.fit(column // g, w1[:, i:i + g])
            q, value = grid.round(column // g, w1[:, i])
            codes[:, column] = q
            error = (w1[:, i] - value) / u1[i, i]
            w1[:, i:] -= np.outer(error, u1[i, i:])
            errors[:, i] = error
        w[:, b1:] -= errors @ u[b0:b1, b1:]

    if bits == 8:
        qweight = codes.astype(np.int8)
        zeros = None
    elif sym and bits == 4:          # gradient's symmetric int4: codes offset by 8, no zeros
        qweight, zeros = pack_int4(codes.astype(np.uint8)), None
    else:
        qweight, zeros = pack_int4(codes.astype(np.uint8)), grid.zeros.astype(np.uint8)
    return PackedWeight(_readonly(qweight), _readonly(grid.scales),
                        None if zeros is None else _readonly(zeros), 8 if bits == 8 else 4, g, k)


def gptq(model: Module, calib_ids, bits: int = 4, group_size: int | None = 128,
         sym: bool = False, act_order: bool = False, damp: float = 0.01, *,
         skip=("lm_head",), inplace: bool = False, progress: bool = True) -> Module:
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
    if not isinstance(model, Module):
        raise TypeError(f"gptq: expected a gradient.nn.Module, got {type(model).__name__}")
    if isinstance(skip, str):
        skip = (skip,)
    target = model if inplace else copy.deepcopy(model)
    blocks = find_blocks(target)
    prefix = next(name for name, m in target.named_modules() if m is blocks)

    def quantize_block(index, block, statistics):
        for name, stats in statistics.items():
            full = f"{prefix}.{index}.{name}" if prefix else f"{index}.{name}"
            linear = block.get_submodule(name)
            if type(linear) is not Linear or _skipped(full, skip):
                continue
            packed = gptq_quantize(linear.weight.detach().float().numpy(), stats.hessian(),
                                   bits, group_size, sym, act_order, damp)
            bias = None if linear.bias is None else linear.bias.detach().float().numpy()
            layer = WeightOnlyLinear(packed, bias)
            layer.train(linear.training)
            block.set_submodule(name, layer)
    calibrate_blocks(target, calib_ids, quantize_block, progress=progress)
    return target
