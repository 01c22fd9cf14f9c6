"""Calibration: a model run over calibration token ids one block at a time, with what the
inputs of each block's ``nn.Linear`` layers look like gathered by forward hooks.

The methods that quantize from data (GPTQ, AWQ, SmoothQuant) need, per linear layer,
statistics of the activations it multiplies: ``X^T X`` (GPTQ's Hessian), the largest and the
mean magnitude of each input channel (AWQ's and SmoothQuant's scales). GPTQ implementations
gather them block by block (a decoder layer at a time), and so does :func:`calibrate_blocks`:

1. The model's forward runs once over every calibration batch with each block replaced by a
   stand-in that keeps the block's arguments (the hidden states, and whatever else the model
   passes: rotary tables, masks) and returns its input: the blocks' arithmetic is skipped, and
   the run stops at the last block (no head).
2. For each block in order: the block runs on every batch's hidden states with hooks on its
   linear layers adding their inputs to :class:`InputStatistics`; ``visit(index, block,
   statistics)`` then does what it does (quantizes the block's layers, in place); the block
   runs again, as ``visit`` left it, to give the next block its inputs. A block's inputs are
   therefore those of the model as quantized so far, as GPTQ's sequential pass has them.

Only the block being calibrated holds statistics, and only one block's inputs and outputs are
alive at a time: the memory is the model plus a few times one block's activations.

Example::

    >>> def show(i, block, stats):
    ...     print(i, {name: s.count for name, s in stats.items()})
    >>> calibrate_blocks(model, [ids_a, ids_b], show)    # ids: (T,) or (B, T) token ids
"""

from __future__ import annotations

import copy

import numpy as np

from ..autograd import no_grad
from ..errors import ArgumentTypeError, ShapeError
from ..nn.module import Module
from ..nn.modules.container import ModuleList
from ..nn.modules.linear import Linear
from ..ops.creation import tensor
from ..tensor import Tensor
from .weight_only import WeightOnlyLinear, _skipped

__all__ = ["InputStatistics", "calibrate_blocks", "find_blocks", "quantize_blocks"]


class InputStatistics:
    """What a linear layer's inputs looked like over calibration: ``xtx`` (float64, in x in)
    the sum of ``x x^T`` over every input row ``x``, ``abs_max`` and ``abs_sum`` per input
    channel, and ``count`` rows.

    Example::

        >>> s = InputStatistics(4)
        >>> s.add(np.ones((3, 4), np.float32)); s.count, s.hessian()[0, 0]
        (3, 2.0)
    """

    def __init__(self, width: int):
        self.width = int(width)
        self.xtx = np.zeros((width, width), np.float64)
        self.abs_max = np.zeros(width, np.float32)
        self.abs_sum = np.zeros(width, np.float64)
        self.count = 0

    def add(self, x) -> None:
        """Rows of inputs (any leading dimensions, the last one the layer's input width). The
        products of one call are summed in float32 (BLAS), the calls in float64."""
        x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, self.width)
        self.xtx += x.T @ x
        magnitude = np.abs(x)
        if len(x):
            self.abs_max = np.maximum(self.abs_max, magnitude.max(axis=0))
        self.abs_sum += magnitude.sum(axis=0, dtype=np.float64)
        self.count += len(x)

    def hessian(self) -> np.ndarray:
        """GPTQ's Hessian of the layer's squared output error: ``2 / count * sum x x^T``."""
        return self.xtx * (2.0 / max(self.count, 1))

    def abs_mean(self) -> np.ndarray:
        """The mean magnitude of each input channel (AWQ's activation scale)."""
        return (self.abs_sum / max(self.count, 1)).astype(np.float32)


def find_blocks(model: Module) -> ModuleList:
    """The model's repeated blocks: its longest ``ModuleList`` whose modules are all of one
    type (a decoder's layers: ``model.model.layers``, ``transformer.h``)."""
    best = None
    for _, module in model.named_modules():
        if (isinstance(module, ModuleList) and len(module)
                and len({type(m) for m in module}) == 1
                and (best is None or len(module) > len(best))):
            best = module
    if best is None:
        raise ShapeError(f"calibration: {type(model).__name__} has no list of repeated blocks "
                         f"(a ModuleList of decoder layers) to calibrate one at a time")
    return best


class _Stop(Exception):
    """Raised by the last block's stand-in: the rest of the forward is not needed."""


def _batches(calib_ids) -> list:
    """Calibration token ids as a list of (B, T) int64 arrays."""
    if isinstance(calib_ids, (np.ndarray, Tensor)):
        calib_ids = [calib_ids]
    out = []
    for ids in calib_ids:
        ids = np.asarray(ids.numpy() if isinstance(ids, Tensor) else ids, dtype=np.int64)
        if ids.ndim == 1:
            ids = ids[None]
        if ids.ndim != 2 or ids.shape[1] == 0:
            raise ShapeError(f"calibration: expected sequences of token ids of shape (T,) or "
                             f"(B, T), got shape {ids.shape}")
        out.append(ids)
    if not out:
        raise ShapeError("calibration: no calibration sequences given")
    return out


def _block_inputs(model, blocks, batches, device) -> list:
    """Per batch, per block: the ``(args, kwargs)`` the model's forward calls the block with
    (see the module docstring, step 1)."""
    arguments = []
    own = [block.__dict__.get("forward") for block in blocks]
    current: list = []

    def stand_in(index):
        def forward(*args, **kwargs):
            current.append((args, kwargs))
            if index == len(blocks) - 1:
                raise _Stop
            return args[0]
        return forward
    try:
        for index, block in enumerate(blocks):
            block.forward = stand_in(index)
        for ids in batches:
            current = []
            try:
                model(tensor(ids, device=device))
            except _Stop:
                pass
            if len(current) != len(blocks):
                raise ShapeError(f"calibration: the forward called {len(current)} of the "
                                 f"{len(blocks)} blocks once each; calibrate_blocks needs a "
                                 f"model whose forward runs every block once, in order")
            arguments.append(current)
    finally:
        for block, forward in zip(blocks, own):
            if forward is None:
                del block.forward
            else:
                block.forward = forward
    return arguments


def _gather(block, runs) -> dict:
    """The :class:`InputStatistics` of the block's linear layers over ``runs`` (its hidden
    states and other arguments, per batch). Layers that read one array (q, k and v; gate and
    up) share one statistics object, computed once."""
    seen: list = []
    handles = [m.register_forward_hook(lambda module, args, out, name=name: seen.append(
        (name, args[0]))) for name, m in block.named_modules() if type(m) is Linear]
    statistics: dict = {}
    try:
        for x, (args, kwargs) in runs:
            seen.clear()
            block(x, *args[1:], **kwargs)
            done: dict = {}
            for name, tensor_ in seen:
                key = id(tensor_._data)
                if name not in statistics:
                    statistics[name] = done.get(key) or InputStatistics(tensor_.shape[-1])
                if key not in done:
                    statistics[name].add(tensor_.float().numpy())
                    done[key] = statistics[name]
    finally:
        for handle in handles:
            handle.remove()
    return statistics


def calibrate_blocks(model: Module, calib_ids, visit, progress: bool = False) -> None:
    """Run ``model`` over ``calib_ids`` (a list of token id arrays, (T,) or (B, T) each) one
    block at a time, calling ``visit(index, block, statistics)`` for each block with the
    :class:`InputStatistics` of its ``nn.Linear`` layers by name within the block (see the
    module docstring). ``progress`` shows a tqdm bar over the blocks."""
    blocks = find_blocks(model)
    batches = _batches(calib_ids)
    device = next(iter(model.parameters())).device
    with no_grad():
        per_batch = _block_inputs(model, blocks, batches, device)
        hidden = [calls[0][0][0] for calls in per_batch]
        indices = range(len(blocks))
        if progress:
            from tqdm.auto import tqdm
            indices = tqdm(indices, desc="calibrating", unit="block")
        for index in indices:
            block = blocks[index]
            statistics = _gather(block, [(hidden[b], calls[index])
                                         for b, calls in enumerate(per_batch)])
            visit(index, block, statistics)
            for b, calls in enumerate(per_batch):
                args, kwargs = calls[index]
                out = block(hidden[b], *args[1:], **kwargs)
                hidden[b] = out[0] if isinstance(out, tuple) else out


def quantize_blocks(model: Module, calib_ids, quantize_weight, *, before=None,
                    activations: str = "float32", skip=("lm_head",), inplace: bool = False,
                    progress: bool = True, where: str = "quantize_blocks") -> Module:
    """What GPTQ, AWQ and SmoothQuant share: ``model`` (a copy unless ``inplace``) run over
    ``calib_ids`` one block at a time (:func:`calibrate_blocks`), each block's ``nn.Linear``
    layers (those not in ``skip``: names, dotted suffixes or patterns, as
    :func:`gradient.quant.quantize`'s) replaced by :class:`~gradient.quant.weight_only.
    WeightOnlyLinear` layers of ``activations``, their weights
    ``quantize_weight(name, weight, statistics)`` (a PackedWeight of the float32 weight).
    ``before(block, statistics, names)`` runs first in each block, with the names of the
    layers to be replaced (AWQ's and SmoothQuant's folds). Returns the model.

    Example::

        >>> quantize_blocks(model, calib, lambda name, w, stats: round_to_nearest(w, 4, 64))
    """
    if not isinstance(model, Module):
        raise ArgumentTypeError(
            f"{where}: expected a gradient.nn.Module, got {type(model).__name__}")
    if isinstance(skip, str):
        skip = (skip,)
    target = model if inplace else copy.deepcopy(model)
    blocks = find_blocks(target)
    prefix = next(name for name, m in target.named_modules() if m is blocks)

    def visit(index, block, statistics):
        names = [name for name in statistics
                 if type(block.get_submodule(name)) is Linear
                 and not _skipped(f"{prefix}.{index}.{name}" if prefix else f"{index}.{name}",
                                  skip)]
        if before is not None:
            before(block, statistics, names)
        for name in names:
            linear = block.get_submodule(name)
            packed = quantize_weight(name, linear.weight.detach().float().numpy(),
                                     statistics[name])
            bias = None if linear.bias is None else linear.bias.detach().float().numpy()
            layer = WeightOnlyLinear(packed, bias, activations=activations)
            layer.train(linear.training)
            block.set_submodule(name, layer)
    calibrate_blocks(target, calib_ids, visit, progress=progress)
    return target
