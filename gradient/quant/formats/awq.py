"""AWQ checkpoints (``quant_method: "awq"``, ``version: "gemm"``, as AutoAWQ writes them).

A quantized linear layer ``<name>`` is three tensors:

* ``qweight`` int32 (in_features, out_features * bits / 32): the codes packed along the output
  dimension, eight 4-bit codes to a word in the order of the GEMM kernel: position ``i`` of a
  word holds output column ``8 c + ORDER[i]``, ``ORDER = (0, 2, 4, 6, 1, 3, 5, 7)``;
* ``qzeros`` int32 (groups, out_features * bits / 32): the zero points, packed the same way;
* ``scales`` float16 (groups, out_features).

A weight is ``(q - z) * scale``; the groups are consecutive input channels.
"""

from __future__ import annotations

import numpy as np

from ...errors import FileFormatError
from ..weight_only import PackedWeight, _readonly, pack_int4
from .packing import pack_words, unpack_words

__all__ = ["SUFFIXES", "ACTIVATIONS", "ORDER", "read_layer", "write_layer", "config"]

SUFFIXES = ("qweight", "qzeros", "scales")
#: The layers' inputs: float (the format has no word for quantized activations).
ACTIVATIONS = ("float32",)
#: The order of the codes within a word (the GEMM kernel's).
ORDER = (0, 2, 4, 6, 1, 3, 5, 7)


def read_layer(config: dict, tensors: dict, name: str) -> tuple:
    """``(PackedWeight, None, "float32")`` of a layer from its tensors."""
    bits = int(config.get("bits", config.get("w_bit", 4)))
    version = str(config.get("version", "gemm")).lower()
    if bits != 4 or version != "gemm":
        raise FileFormatError(f"{name}: AWQ {version!r} weights of {bits} bits are not read "
                              f"(4-bit GEMM weights are)")
    codes = unpack_words(tensors["qweight"], 4, axis=1, order=ORDER).T      # (out, in)
    zeros = unpack_words(tensors["qzeros"], 4, axis=1, order=ORDER)         # (groups, out)
    scales = np.asarray(tensors["scales"]).astype(np.float16)
    out, k = codes.shape
    if scales.shape != zeros.shape or scales.shape[1] != out or k % scales.shape[0]:
        raise FileFormatError(f"{name}: AWQ tensors of mismatched shapes: qweight "
                              f"{tensors['qweight'].shape}, qzeros {tensors['qzeros'].shape}, "
                              f"scales {scales.shape}")
    return PackedWeight(_readonly(pack_int4(codes)), _readonly(scales.T),
                        _readonly(np.ascontiguousarray(zeros.T)), 4, k // scales.shape[0],
                        k), None, "float32"


def write_layer(packed: PackedWeight, order, activations: str = "float32") -> dict:
    if packed.code_bits != 4 or order is not None:
        raise FileFormatError("AWQ checkpoints hold 4-bit weights in their own channel order; "
                              "write 8-bit or activation-ordered layers as GPTQ or "
                              "compressed-tensors")
    out, k = packed.out_features, packed.in_features
    if out % 8:
        raise FileFormatError(f"AWQ packs eight output columns to a word: a layer of {out} "
                              f"rows is not a multiple of 8; write compressed-tensors instead")
    zeros = (packed.zeros if packed.zeros is not None
             else np.full((out, k // packed.group_size), 8, np.uint8))
    return {"qweight": pack_words(packed.codes().T, 4, axis=1, order=ORDER),
            "qzeros": pack_words(zeros.T, 4, axis=1, order=ORDER),
            "scales": np.ascontiguousarray(packed.scales.T)}


def config(packed: PackedWeight, order, activations: str = "float32") -> dict:
    return {"quant_method": "awq", "bits": 4, "group_size": packed.group_size,
            "zero_point": True, "version": "gemm"}
