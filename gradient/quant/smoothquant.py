"""SmoothQuant: int8 weights and int8 activations (W8A8) for language models (Xiao et al.,
2022, "SmoothQuant: Accurate and Efficient Post-Training Quantization for Large Language
Models").

Weights quantize to int8 per output channel with little loss; activations do not, one scale a
token, because a few channels carry values a hundred times the rest. SmoothQuant moves that
difficulty into the weights: each input channel j of a group of layers reading one input is
divided by

    s_j = max|x_j| ** alpha / max|W_:,j| ** (1 - alpha)

(``max|x_j|`` over the calibration tokens, ``max|W_:,j|`` over the group's rows; ``alpha``
0.5 by default), folded into the norm or layer that produces the input, and the weights'
columns are multiplied by it: the float model computes the same function, and both sides now
quantize well. The folds are AWQ's (:data:`~gradient.quant.awq.FOLDS`: the norms before
q/k/v and gate/up, v_proj before o_proj when their widths match, up_proj before down_proj).

Every linear layer of the blocks then becomes a :class:`~gradient.quant.weight_only.
WeightOnlyLinear` with int8 weights per output channel and ``activations="int8_per_token"``:
each row of x quantized to int8 with one scale as it arrives, the product integer (int8 x
int8 -> int32, VNNI where the CPU has it) in the kernels of :mod:`gradient.quant.interleaved`,
one scale product per 32-value block. Layers whose ``in_features`` is not a multiple of 32
keep float activations (the interleaved kernels read blocks of 32).

Example::

    >>> q = gradient.quant.smoothquant(model, [ids[i:i + 256] for i in range(0, 32768, 256)])
"""

from __future__ import annotations

import numpy as np

from ..nn.module import Module
from .awq import fold_scales
from .calibration import InputStatistics, quantize_blocks
from .weight_only import quantize_weight
from ..errors import ArgumentValueError

__all__ = ["smoothquant", "smoothing_factors"]


def smoothing_factors(weights, statistics: InputStatistics, alpha: float = 0.5) -> np.ndarray:
    """SmoothQuant's factors (float32, in_features) for the layers ``weights`` (float (out,
    in) arrays) that read inputs described by ``statistics``: ``max|x_j| ** alpha /
    max|W_:,j| ** (1 - alpha)``, both maxima at least 1e-5 (a channel never active, or never
    weighted, keeps a finite factor).

    Example: ``s = smoothing_factors([wq, wk, wv], stats["self_attn.q_proj"], 0.5)``
    """
    if not 0 <= alpha <= 1:
        raise ArgumentValueError(f"smoothquant: alpha must be in [0, 1], got {alpha!r}")
    w_max = np.max([np.abs(np.asarray(w, np.float32)).max(axis=0) for w in weights], axis=0)
    x_max = np.maximum(statistics.abs_max.astype(np.float64), 1e-5)
    s = x_max ** alpha / np.maximum(w_max.astype(np.float64), 1e-5) ** (1 - alpha)
    return np.maximum(s, 1e-5).astype(np.float32)


def smoothquant(model: Module, calib_ids, alpha: float = 0.5, *, skip=("lm_head",),
                inplace: bool = False, progress: bool = True) -> Module:
    """The model with its blocks' linear layers smoothed (see the module docstring) and
    quantized to int8 weights per output channel with per-token int8 activations (W8A8);
    layers outside the blocks (the head) stay float. Calibration: a list of (T,) or (B, T)
    token id arrays, run block by block (:mod:`.calibration`). ``skip``, ``inplace``,
    ``progress``: as :func:`~gradient.quant.gptq.gptq`.

    Example::

        >>> q = smoothquant(model, calib, alpha=0.5)
        >>> gradient.quant.quality.evaluate(model, q, held_out)["perplexity"]
    """
    if not 0 <= alpha <= 1:
        raise ArgumentValueError(f"smoothquant: alpha must be in [0, 1], got {alpha!r}")
    return quantize_blocks(
        model, calib_ids, lambda name, weight, stats: quantize_weight(weight, bits=8),
        before=lambda block, statistics, names: fold_scales(
            block, statistics, names, lambda weights, stats: smoothing_factors(
                weights, stats, alpha)),
        activations="int8_per_token", skip=skip, inplace=inplace, progress=progress,
        where="smoothquant")
