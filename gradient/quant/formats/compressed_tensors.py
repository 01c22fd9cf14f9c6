"""compressed-tensors checkpoints (``quant_method: "compressed-tensors"``, as llm-compressor
and the ``compressed-tensors`` library write them), in the two integer formats:

* ``"pack-quantized"`` (W4A16, W3A16, W8A16 and the like): ``weight_packed`` int32
  (out_features, in_features * bits / 32), the codes packed along the input dimension as a
  bit stream (:mod:`.packing`; before the library's dense packing, ``32 // bits`` codes to a
  word: told apart by the words' count), the first in the lowest bits, each stored as the
  signed code plus ``2^(bits - 1)``; ``weight_scale`` (out_features, groups) in the model's
  dtype; for asymmetric weights ``weight_zero_point`` int32 (out_features * bits / 32,
  groups), the signed zero points packed the same way along the output dimension;
  ``weight_shape`` int (2,).
* ``"int-quantized"`` (W8A8, W8A16): ``weight`` int8 (out_features, in_features) and
  ``weight_scale`` (out_features, groups), symmetric.

A weight is ``(q - zp) * scale``; with ``actorder: "group"`` the input channels' groups are
given by ``weight_g_idx`` (read as GPTQ's g_idx), with ``"static"`` they are consecutive.
Codes of up to 4 bits are held in gradient's int4 layout (2 and 3 bits with their zero
points, ``grid_bits``), 8-bit ones in its int8 layout (symmetric only).
The layers' scheme (``config_groups``: ``weights``, and
``input_activations``: dynamic int8 per token is read as ``activations="int8_per_token"``)
is matched by the groups' ``targets``: ``"Linear"``, a layer name, or ``"re:<pattern>"``.
"""

from __future__ import annotations

import re

import numpy as np

from ...errors import FileFormatError, ShapeError
from ..weight_only import PackedWeight, _readonly, pack_int4
from .packing import pack_words, packed_length, unpack_words

__all__ = ["SUFFIXES", "ACTIVATIONS", "read_layer", "write_layer", "config", "scheme_of"]

SUFFIXES = ("weight_packed", "weight_scale", "weight_zero_point", "weight_shape", "weight",
            "weight_g_idx")
#: The layers' inputs it can describe: float, or dynamic int8 per token.
ACTIVATIONS = ("float32", "int8_per_token")


def scheme_of(config: dict, name: str) -> dict | None:
    """The config group (its ``weights`` and ``input_activations``) that covers layer
    ``name``, or None (the layer is not quantized: ``ignore``, or no group targets it)."""
    for pattern in config.get("ignore") or ():
        if _matches(pattern, name):
            return None
    for group in (config.get("config_groups") or {}).values():
        if any(_matches(t, name) for t in group.get("targets") or ()):
            return group
    return None


def _matches(target: str, name: str) -> bool:
    if target == "Linear":
        return True
    if target.startswith("re:"):
        return re.match(target[3:], name) is not None
    return target == name


def read_layer(config: dict, tensors: dict, name: str) -> tuple:
    """``(PackedWeight, None, activations)`` of a layer from its tensors."""
    group = scheme_of(config, name)
    if group is None:
        raise FileFormatError(f"{name}: no config group of the checkpoint covers the layer")
    weights = group.get("weights") or {}
    bits = int(weights.get("num_bits", 8))
    if weights.get("type", "int") != "int":
        raise FileFormatError(f"{name}: compressed-tensors weights of type "
                              f"{weights.get('type')!r} are not read (integer weights are)")
    scales = np.asarray(tensors["weight_scale"])
    if scales.ndim not in (1, 2) or not scales.size:
        raise FileFormatError(f"{name}: weight_scale of shape {scales.shape}: expected "
                              f"(rows, groups)")
    scales = scales.reshape(scales.shape[0], -1)
    if "weight_packed" in tensors:
        shape = tuple(int(v) for v in np.asarray(tensors["weight_shape"]).reshape(-1))
        if (len(shape) != 2 or scales.shape[0] != shape[0] or not scales.shape[1]
                or shape[1] % scales.shape[1] or (bits < 8 and shape[1] % 32)):
            raise FileFormatError(f"{name}: weight_shape {shape} and weight_scale "
                                  f"{scales.shape} do not make a layer gradient holds: "
                                  f"expected (rows, in_features) with a scale per row and "
                                  f"group, in_features a multiple of the groups (and of 32 "
                                  f"below 8 bits)")
        codes = _unpack(tensors["weight_packed"], bits, 1, shape[1], name)
        size = shape[1] // scales.shape[1]
        # activation order "group": each input channel's group in weight_g_idx (as GPTQ's
        # g_idx); "static" kept the groups consecutive, as stored
        order = _input_order(tensors.get("weight_g_idx"), size, name)
        if order is not None:
            codes = codes[:, order]
        middle = 1 << (bits - 1)
        zeros = None                     # symmetric: every zero point the middle code
        if "weight_zero_point" in tensors:
            zeros = _unpack(tensors["weight_zero_point"], bits, 0, shape[0], name)
            if zeros.shape != scales.shape:
                raise FileFormatError(f"{name}: weight_zero_point holds {zeros.shape} zero "
                                      f"points for weight_scale's {scales.shape}")
        if bits == 8:
            if zeros is not None and (zeros != middle).any():
                raise FileFormatError(f"{name}: asymmetric 8-bit weights are not read (the "
                                      f"int8 layout is symmetric)")
            q = (codes.astype(np.int16) - middle).astype(np.int8)
            packed = PackedWeight(_readonly(q), _readonly(scales), None, 8, size, shape[1])
        elif bits == 4 and zeros is None:
            # the signed codes plus 8 are gradient's symmetric int4
            packed = PackedWeight(_readonly(pack_int4(codes)), _readonly(scales), None, 4,
                                  size, shape[1])
        else:                            # narrower codes keep their zero points in the layout
            if zeros is None:
                zeros = np.full(scales.shape, middle, np.uint8)
            packed = PackedWeight(_readonly(pack_int4(codes)), _readonly(scales),
                                  _readonly(zeros), 4, size, shape[1],
                                  bits if bits < 4 else None)
    elif "weight" in tensors:
        q = np.asarray(tensors["weight"])
        if bits != 8 or q.dtype != np.int8 or "weight_zero_point" in tensors:
            raise FileFormatError(f"{name}: int-quantized weights are read as symmetric int8; "
                                  f"got {bits} bits of {q.dtype}")
        size = q.shape[1] // scales.shape[1]
        order = _input_order(tensors.get("weight_g_idx"), size, name)
        if order is not None:
            q = q[:, order]
        packed = PackedWeight(_readonly(q), _readonly(scales), None, 8, size, q.shape[1])
    else:
        raise FileFormatError(f"{name}: neither weight_packed nor an int8 weight")
    acts = group.get("input_activations") or None
    activations = "float32"
    if acts is not None:
        if not (acts.get("type", "int") == "int" and int(acts.get("num_bits", 8)) == 8
                and acts.get("dynamic") and acts.get("strategy") == "token"):
            raise FileFormatError(f"{name}: input activations {acts} are not read (dynamic "
                                  f"int8 per token is)")
        activations = "int8_per_token"
    return packed, order, activations


def _unpack(words, bits: int, axis: int, count: int, name: str) -> np.ndarray:
    """``count`` codes along ``axis``, packed densely or (older writers) ``32 // bits`` to a
    word: whichever the words' count fits (dense where both do)."""
    if not 1 <= bits <= 4 and bits != 8:
        raise FileFormatError(f"{name}: {bits}-bit packed weights are not read (1 to 4 and 8 "
                              f"bits are)")
    length = np.shape(words)[axis] if np.ndim(words) == 2 else -1
    for dense in (True, False):
        if length == packed_length(count, bits, dense):
            try:
                return unpack_words(words, bits, axis, dense=dense, count=count)
            except ShapeError as e:
                raise FileFormatError(f"{name}: {e}") from None
    raise FileFormatError(f"{name}: packed tensor of shape {np.shape(words)} does not hold "
                          f"{count} {bits}-bit codes along axis {axis} (expected "
                          f"{packed_length(count, bits)} int32 words)")


def _input_order(g_idx, size: int, name: str):
    """The permutation that makes each group's channels consecutive, from the group of each
    channel (``g_idx``); None where they already are (or there is no g_idx)."""
    if g_idx is None:
        return None
    g_idx = np.asarray(g_idx).astype(np.int64).reshape(-1)
    consecutive = np.arange(g_idx.size) // size
    if np.array_equal(g_idx, consecutive):
        return None
    order = np.argsort(g_idx, kind="stable")
    if not np.array_equal(g_idx[order], consecutive):
        raise FileFormatError(f"{name}: weight_g_idx does not give each group {size} channels")
    return order


def write_layer(packed: PackedWeight, order, activations: str = "float32") -> dict:
    if order is not None:
        raise FileFormatError("activation-ordered layers (from a GPTQ checkpoint with "
                              "desc_act) are written as GPTQ: quantization_format='gptq'")
    if packed.bits == 8:
        return {"weight": np.ascontiguousarray(packed.qweight),
                "weight_scale": np.ascontiguousarray(packed.scales)}
    bits = packed.code_bits
    out = {"weight_packed": pack_words(packed.codes(), bits, axis=1),
           "weight_scale": np.ascontiguousarray(packed.scales),
           "weight_shape": np.array([packed.out_features, packed.in_features], np.int64)}
    if packed.zeros is not None:
        out["weight_zero_point"] = pack_words(packed.zeros, bits, axis=0)
    return out


def config(packed: PackedWeight, order, activations: str = "float32") -> dict:
    """A config group for layers like this one."""
    group_size = packed.group_size
    # (int8 in one group a row is per channel; int4 keeps its group size, which is the
    # layer's width only where the layer is that narrow)
    per_channel = packed.bits == 8 and group_size == packed.in_features
    weights = {"num_bits": packed.code_bits, "type": "int", "symmetric": packed.zeros is None,
               "strategy": "channel" if per_channel else "group",
               "group_size": None if per_channel else group_size, "dynamic": False}
    acts = None
    if activations == "int8_per_token":
        acts = {"num_bits": 8, "type": "int", "symmetric": True, "strategy": "token",
                "dynamic": True}
    return {"targets": ["Linear"], "weights": weights, "input_activations": acts,
            "output_activations": None,
            "format": "pack-quantized" if packed.bits == 4 else "int-quantized"}
