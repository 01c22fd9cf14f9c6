"""compressed-tensors checkpoints (``quant_method: "compressed-tensors"``, as llm-compressor
and the ``compressed-tensors`` library write them), in the two integer formats:

* ``"pack-quantized"`` (W4A16 and the like): ``weight_packed`` int32 (out_features,
  in_features * bits / 32), the codes packed along the input dimension, 32 / bits to a word,
  the first in the lowest bits, each stored as the signed code plus ``2^(bits - 1)``;
  ``weight_scale`` (out_features, groups) in the model's dtype; for asymmetric weights
  ``weight_zero_point`` int32 (out_features * bits / 32, groups), the signed zero points
  packed the same way along the output dimension; ``weight_shape`` int (2,).
* ``"int-quantized"`` (W8A8, W8A16): ``weight`` int8 (out_features, in_features) and
  ``weight_scale`` (out_features, groups), symmetric.

A weight is ``(q - zp) * scale``. The layers' scheme (``config_groups``: ``weights``, and
``input_activations``: dynamic int8 per token is read as ``activations="int8_per_token"``)
is matched by the groups' ``targets``: ``"Linear"``, a layer name, or ``"re:<pattern>"``.
"""

from __future__ import annotations

import re

import numpy as np

from ...errors import FileFormatError
from ..weight_only import PackedWeight, _readonly, pack_int4
from .packing import pack_words, unpack_words

__all__ = ["SUFFIXES", "read_layer", "write_layer", "config", "scheme_of"]

SUFFIXES = ("weight_packed", "weight_scale", "weight_zero_point", "weight_shape", "weight")


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
    if weights.get("type", "int") != "int" or weights.get("actorder"):
        raise FileFormatError(f"{name}: compressed-tensors weights of type "
                              f"{weights.get('type')!r} (actorder {weights.get('actorder')}) "
                              f"are not read (integer weights are)")
    scales = np.asarray(tensors["weight_scale"])
    scales = scales.reshape(scales.shape[0], -1)
    if "weight_packed" in tensors:
        if bits != 4:
            raise FileFormatError(f"{name}: {bits}-bit packed weights are not read (4 bits are)")
        shape = tuple(int(v) for v in np.asarray(tensors["weight_shape"]).reshape(-1))
        codes = unpack_words(tensors["weight_packed"], 4, axis=1)[:, :shape[1]]
        if "weight_zero_point" in tensors:
            zeros = unpack_words(tensors["weight_zero_point"], 4, axis=0)[:shape[0]]
            packed = PackedWeight(_readonly(pack_int4(codes)), _readonly(scales),
                                  _readonly(zeros), 4, shape[1] // scales.shape[1], shape[1])
        else:          # symmetric: the signed codes plus 8 are gradient's symmetric int4
            packed = PackedWeight(_readonly(pack_int4(codes)), _readonly(scales), None, 4,
                                  shape[1] // scales.shape[1], shape[1])
    elif "weight" in tensors:
        q = np.asarray(tensors["weight"])
        if bits != 8 or q.dtype != np.int8 or "weight_zero_point" in tensors:
            raise FileFormatError(f"{name}: int-quantized weights are read as symmetric int8; "
                                  f"got {bits} bits of {q.dtype}")
        packed = PackedWeight(_readonly(q), _readonly(scales), None, 8,
                              q.shape[1] // scales.shape[1], q.shape[1])
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
    return packed, None, activations


def write_layer(packed: PackedWeight, order, activations: str = "float32") -> dict:
    if order is not None:
        raise FileFormatError("compressed-tensors checkpoints keep the layers' channel order; "
                              "write activation-ordered layers as GPTQ")
    if packed.bits == 8:
        return {"weight": np.ascontiguousarray(packed.qweight),
                "weight_scale": np.ascontiguousarray(packed.scales)}
    out = {"weight_packed": pack_words(packed.codes(), 4, axis=1),
           "weight_scale": np.ascontiguousarray(packed.scales),
           "weight_shape": np.array([packed.out_features, packed.in_features], np.int64)}
    if packed.zeros is not None:
        if packed.out_features % 8:
            raise FileFormatError("compressed-tensors packs zero points 8 output rows to a "
                                  "word; this layer's rows are not a multiple of 8")
        out["weight_zero_point"] = pack_words(packed.zeros, 4, axis=0)
    return out


def config(packed: PackedWeight, order, activations: str = "float32") -> dict:
    """A config group for layers like this one."""
    group_size = packed.group_size
    # (int8 in one group a row is per channel; int4 keeps its group size, which is the
    # layer's width only where the layer is that narrow)
    per_channel = packed.bits == 8 and group_size == packed.in_features
    weights = {"num_bits": packed.bits, "type": "int", "symmetric": packed.zeros is None,
               "strategy": "channel" if per_channel else "group",
               "group_size": None if per_channel else group_size, "dynamic": False}
    acts = None
    if activations == "int8_per_token":
        acts = {"num_bits": 8, "type": "int", "symmetric": True, "strategy": "token",
                "dynamic": True}
    return {"targets": ["Linear"], "weights": weights, "input_activations": acts,
            "output_activations": None,
            "format": "pack-quantized" if packed.bits == 4 else "int-quantized"}
