"""AWQ: activation-aware weight quantization (Lin et al., 2023, "AWQ: Activation-aware Weight
Quantization for LLM Compression and Acceleration").

A few input channels of a linear layer carry much larger activations than the rest, and the
weights that multiply them matter most. AWQ scales those weight columns up before rounding
(so that they land on a finer grid relative to their size) and the activations down by the
same factors, folded into the operation that produces them (a norm's weight, or the rows of a
preceding linear layer): the float model computes the same function, and the quantized one
loses less. The factors are searched per group of layers that read one input:

    s = mean|x| ** ratio / (w_mean ** (1 - ratio) + 1e-4), normalised by sqrt(max(s) * min(s))

for ``ratio = 0, 1/n, ..., (n-1)/n`` (``w_mean``: each input channel's mean weight magnitude
relative to its group's largest, the reference implementation's "duo scaling"; the paper's
form is ``mean|x| ** ratio``), keeping the ratio whose rounded weights ``Q(W * s) / s`` move
the layers' outputs on the calibration inputs least. Then each group of each row of the
scaled weights is clipped to the magnitude, at most halved, that moves its outputs least
(:func:`awq_clip`; not the query and key projections, as in the reference), and rounded.
The outputs' squared error is ``trace((W - W') H (W - W')^T)`` with ``H = X^T X / count``,
the statistics :mod:`.calibration` gathers anyway, so no candidate needs a forward pass. (The reference implementation measures the error at the output of the whole
attention or MLP for the q/k/v and gate/up groups; here it is measured at the layers' own
outputs, as the reference does for o_proj and down_proj.)

The groups and what their factors fold into (:data:`FOLDS`): a decoder layer's input norm
(q, k, v), its post-attention norm (gate, up), v_proj's rows (o_proj; only when their widths
match, not under grouped-query attention), up_proj's rows (down_proj); GPT-2's ln_1 (c_attn)
and ln_2 (c_fc). Other layers are rounded to nearest. The weights are then rounded on GPTQ's
grid (:func:`~gradient.quant.gptq.fit_grid`: float16 scales, zero points unless ``sym``) to
:class:`~gradient.quant.weight_only.WeightOnlyLinear` layers.

Example::

    >>> q = gradient.quant.awq(model, [ids[i:i + 256] for i in range(0, 32768, 256)],
    ...                        bits=4, group_size=64)
"""

from __future__ import annotations

import numpy as np

from ..nn.module import Module
from ..nn.modules.linear import Linear
from ..ops.creation import from_numpy
from .calibration import InputStatistics, quantize_blocks
from .gptq import fit_grid, round_to_grid, round_to_nearest
from .weight_only import _check_groups
from ..errors import ArgumentValueError

__all__ = ["awq", "awq_scales", "awq_clip", "fold_scales", "FOLDS", "NO_CLIP", "N_GRID"]

#: Candidate ratios of the search: 0, 1/N_GRID, ..., (N_GRID - 1)/N_GRID (the reference's 20).
N_GRID = 20

#: (producer, consumers) within a block, by module name: the consumers read the producer's
#: output (a norm's, or a linear's through the attention's or the gated MLP's products, which
#: are linear in it), so dividing the producer's output channels by s and multiplying the
#: consumers' input columns by s leaves the float model's function as it was.
FOLDS = (("input_layernorm", ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")),
         ("post_attention_layernorm", ("mlp.gate_proj", "mlp.up_proj")),
         ("self_attn.v_proj", ("self_attn.o_proj",)),
         ("mlp.up_proj", ("mlp.down_proj",)),
         ("ln_1", ("attn.c_attn",)),
         ("ln_2", ("mlp.c_fc",)))


def _rounded(w: np.ndarray, bits: int, group_size: int, sym: bool) -> np.ndarray:
    """``w`` (out, in) rounded to nearest on its grid, as float64 values."""
    rows, k = w.shape
    groups = w.reshape(rows, k // group_size, group_size)
    scales, zeros = fit_grid(groups, bits, sym)
    return round_to_grid(groups, scales, zeros, bits)[1].reshape(rows, k)


def _weight_mean(weights, group_size: int) -> np.ndarray:
    """Per input channel, the mean over the layers' rows of each weight's magnitude relative
    to the largest of its group: the weights' side of the duo scaling."""
    w = np.abs(np.concatenate(weights).astype(np.float64))
    rows, k = w.shape
    groups = w.reshape(rows, k // group_size, group_size)
    relative = groups / (groups.max(axis=-1, keepdims=True) + 1e-6)
    return relative.reshape(rows, k).mean(axis=0)


def awq_scales(weights, statistics: InputStatistics, bits: int = 4, group_size: int = 128,
               sym: bool = False, n_grid: int = N_GRID,
               duo_scaling: bool = True) -> tuple[np.ndarray, float, list]:
    """The search for one group of layers reading one input: ``(scales, ratio, losses)``, the
    float32 factors (in_features,) the layers' input columns are multiplied by, the ratio
    they came from and every candidate's output error (see the module docstring).
    ``weights``: the layers' float (out, in) weights; ``statistics``: their inputs'.
    ``duo_scaling``: the candidates are ``mean|x| ** ratio / (w_mean ** (1 - ratio) + 1e-4)``
    with ``w_mean`` each input channel's mean relative weight magnitude (the reference's
    default); else ``mean|x| ** ratio`` (the paper's).

    Example: ``s, ratio, _ = awq_scales([wq, wk, wv], stats["self_attn.q_proj"], 4, 64)``
    """
    weights = [np.asarray(w, dtype=np.float32) for w in weights]
    for w in weights:
        _check_groups(w.shape, group_size, "awq")
    h = statistics.xtx / max(statistics.count, 1)
    x_mean = statistics.abs_sum / max(statistics.count, 1)       # float64, per channel
    w_mean = _weight_mean(weights, group_size) if duo_scaling else None
    losses, best = [], (np.inf, np.ones(statistics.width, np.float32), 0.0)
    for step in range(n_grid):
        ratio = step / n_grid
        s = x_mean ** ratio
        if duo_scaling:
            s = s / (w_mean ** (1 - ratio) + 1e-4)
        s = np.maximum(s, 1e-4)
        s = (s / np.sqrt(s.max() * s.min())).astype(np.float32)
        loss = 0.0
        for w in weights:
            delta = w - _rounded(w * s, bits, group_size, sym) / s
            loss += float(np.sum((delta @ h) * delta))
        losses.append(loss)
        if loss < best[0]:
            best = (loss, s, ratio)
    return best[1], best[2], losses


def awq_clip(weight, hessian: np.ndarray, bits: int = 4, group_size: int = 128,
             sym: bool = False, n_grid: int = N_GRID, max_shrink: float = 0.5) -> np.ndarray:
    """The clipping search: per row and group of ``weight`` (out, in), the largest magnitude
    its weights are clipped to before rounding, ``max|w| * (1 - i / n_grid)`` for ``i`` below
    ``max_shrink * n_grid``, whichever moves the group's share of the row's output least on
    the inputs whose ``X^T X / count`` is ``hessian`` (its diagonal block for the group, as the
    reference measures each group's partial sums). Returns the limits (out, groups), float32.

    Example: ``limit = awq_clip(w, stats.xtx / stats.count, 4, 64)``
    """
    w = np.asarray(weight, dtype=np.float32)
    rows, k = _check_groups(w.shape, group_size, "awq")
    n = k // group_size
    groups = w.reshape(rows, n, group_size)
    blocks = hessian.reshape(n, group_size, n, group_size)[np.arange(n), :, np.arange(n), :]
    largest = np.abs(groups).max(axis=-1)
    best_error = np.full((rows, n), np.inf)
    best = largest.copy()
    for step in range(int(max_shrink * n_grid)):
        limit = (largest * np.float32(1 - step / n_grid)).astype(np.float32)
        clipped = np.clip(groups, -limit[..., None], limit[..., None])
        scales, zeros = fit_grid(clipped, bits, sym)
        delta = groups - round_to_grid(clipped, scales, zeros, bits)[1]
        error = np.einsum("rgi,gij,rgj->rg", delta, blocks, delta, optimize=True)
        better = error < best_error
        best_error[better], best[better] = error[better], limit[better]
    return best


#: Layers whose weights are not clipped: the query and key projections (the reference's rule:
#: the attention scores are too sensitive to their largest weights).
NO_CLIP = ("q_proj", "k_proj", "c_attn")


def fold_scales(block: Module, statistics: dict, names, factors) -> dict:
    """The folds of :data:`FOLDS` in ``block`` whose consumers are all in ``names`` (the
    layers being quantized): for each, ``s = factors(weights, statistics)`` of the consumers'
    float weights and their inputs' statistics, the producer's output channels divided by
    ``s`` and the consumers' input columns multiplied by it. Returns ``{consumer: s}``.

    Example: ``fold_scales(block, stats, names, lambda ws, st: smoothing_factors(ws, st))``
    """
    present = dict(block.named_modules())
    scaled = {}
    for producer, consumers in FOLDS:
        if producer not in present or not all(c in names for c in consumers):
            continue
        source = present[producer]
        if _output_width(source) != statistics[consumers[0]].width:
            continue                              # (v_proj -> o_proj under GQA: no fold)
        layers = [block.get_submodule(c) for c in consumers]
        s = factors([m.weight.detach().float().numpy() for m in layers],
                    statistics[consumers[0]])
        _scale_output(source, s)
        for m in layers:
            w = m.weight.detach().float().numpy() * s
            m.weight.copy_(from_numpy(w.astype(np.float32)).to(m.weight.dtype))
        scaled.update({c: s for c in consumers})
    return scaled


def _output_width(module: Module) -> int | None:
    """The output channels whose scale can change: a linear layer's rows, a norm's weight."""
    if isinstance(module, Linear):
        return module.out_features
    weight = getattr(module, "weight", None)
    return weight.shape[0] if weight is not None and weight.ndim == 1 else None


def _scale_output(module: Module, s: np.ndarray) -> None:
    """Divide the output channels of a norm (its weight and bias) or of a linear layer (the
    rows of its weight, its bias) by ``s``."""
    for name in ("weight", "bias"):
        p = getattr(module, name, None)
        if p is None:
            continue
        a = p.detach().float().numpy()
        a = a / (s if a.ndim == 1 else s[:, None])
        p.copy_(from_numpy(a.astype(np.float32)).to(p.dtype))


def awq(model: Module, calib_ids, bits: int = 4, group_size: int = 128, sym: bool = False,
        n_grid: int = N_GRID, duo_scaling: bool = True, clip: bool = True, *,
        skip=("lm_head",), inplace: bool = False, progress: bool = True) -> Module:
    """The model with every ``nn.Linear`` of its repeated blocks scaled by AWQ's search,
    clipped (``clip``: :func:`awq_clip`, all but the query and key projections) and rounded
    to ``bits`` (3, 4 or, symmetric, 8) in groups of ``group_size`` along the input, as
    :class:`~gradient.quant.weight_only.WeightOnlyLinear` layers; layers outside the blocks
    (the head) stay float. Calibration: a list of (T,) or (B, T) token id arrays, run block
    by block (:mod:`.calibration`). ``duo_scaling``: see :func:`awq_scales`. ``skip``,
    ``inplace``, ``progress``: as :func:`~gradient.quant.gptq.gptq`.

    Example::

        >>> q = awq(model, calib, bits=4, group_size=64)
        >>> gradient.quant.quality.evaluate(model, q, held_out)["perplexity"]
    """
    if bits not in (3, 4, 8) or (bits == 8 and not sym):
        raise ArgumentValueError(
            f"awq: bits must be 3 or 4, or 8 with sym=True; got bits={bits!r}, "
            f"sym={sym!r}")
    scaled = {}                  # in the block at hand: layer -> the factors of its columns

    def search_and_fold(block, statistics, names):
        # every group searched on the float weights, then folded
        scaled.clear()
        scaled.update(fold_scales(block, statistics, names, lambda weights, stats: awq_scales(
            weights, stats, bits, group_size, sym, n_grid, duo_scaling)[0]))

    def clip_and_round(name, w, stats):
        if clip and not name.endswith(NO_CLIP):
            h = stats.xtx / max(stats.count, 1)
            if name in scaled:                    # the inputs the scaled weight meets: x / s
                inverse = 1.0 / scaled[name].astype(np.float64)
                h = h * np.outer(inverse, inverse)
            limit = awq_clip(w, h, bits, group_size, sym, n_grid)
            rows, k = w.shape
            w = np.clip(w.reshape(rows, -1, group_size), -limit[..., None],
                        limit[..., None]).reshape(rows, k)
        return round_to_nearest(w, bits, group_size, sym)
    return quantize_blocks(model, calib_ids, clip_and_round, before=search_and_fold,
                           skip=skip, inplace=inplace, progress=progress, where="awq")
