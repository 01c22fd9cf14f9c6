"""GPTQ checkpoints (``quant_method: "gptq"``, as AutoGPTQ and GPTQModel write them).

A quantized linear layer ``<name>`` is four tensors:

* ``qweight`` int32 (in_features * bits / 32, out_features): the codes packed along the input
  dimension as a bit stream (:mod:`.packing`: 32 / bits to a word for 2, 4 and 8 bits, 32
  codes to 3 words for 3 bits), the first in the lowest bits;
* ``qzeros`` int32 (groups, out_features * bits / 32): the zero points packed along the output
  dimension the same way; the original format (``checkpoint_format: "gptq"``) stores each
  zero point less one (a 4-bit zero point of 0 is stored as 15 and read back as 16, which
  every reader reproduces), ``"gptq_v2"`` stores it as it is;
* ``scales`` float16 (groups, out_features);
* ``g_idx`` int32 (in_features,): the group of each input channel, ``i // group_size``, or,
  with ``desc_act`` (activation order), a permutation of those.

A weight is ``(q - z) * scale`` with the zero point and scale of its input channel's group.
``sym: true`` checkpoints have every zero point at the middle code (8 for 4 bits). 2- and
3-bit codes are held in gradient's int4 layout with their zero points (``grid_bits``).
"""

from __future__ import annotations

import numpy as np

from ...errors import FileFormatError, ShapeError
from ..weight_only import PackedWeight, _readonly, pack_int4
from .packing import pack_words, unpack_words

__all__ = ["SUFFIXES", "ACTIVATIONS", "read_layer", "write_layer", "config"]

#: The tensors of one layer, by suffix.
SUFFIXES = ("qweight", "qzeros", "scales", "g_idx")
#: The layers' inputs: float (the format has no word for quantized activations).
ACTIVATIONS = ("float32",)


def read_layer(config: dict, tensors: dict, name: str) -> tuple:
    """``(PackedWeight, input_order, "float32")`` of a layer from its tensors (see the module
    docstring); ``input_order`` the permutation of the input channels that makes their groups
    contiguous (activation order), or None."""
    bits = int(config.get("bits", 4))
    if bits not in (2, 3, 4, 8):
        raise FileFormatError(f"{name}: {bits}-bit GPTQ weights are not read (2, 3, 4 and 8 "
                              f"bits are)")
    qweight, qzeros = tensors["qweight"], tensors["qzeros"]
    scales = np.asarray(tensors["scales"]).astype(np.float16)
    if scales.ndim != 2 or np.ndim(qweight) != 2 or np.ndim(qzeros) != 2:
        raise FileFormatError(f"{name}: GPTQ tensors must be 2-d: qweight {np.shape(qweight)}, "
                              f"qzeros {np.shape(qzeros)}, scales {scales.shape}")
    try:
        codes = unpack_words(qweight, bits, axis=0).T                # (out, in)
        zeros = unpack_words(qzeros, bits, axis=1, count=scales.shape[1]).astype(np.int32)
    except ShapeError as e:                                          # (groups, out)
        raise FileFormatError(f"{name}: GPTQ tensors of mismatched shapes: {e}") from None
    if config.get("checkpoint_format", "gptq") != "gptq_v2":
        zeros = zeros + 1
    out, k = codes.shape
    groups = scales.shape[0]
    if scales.shape != (groups, out) or zeros.shape != (groups, out) or k % groups:
        raise FileFormatError(f"{name}: GPTQ tensors of mismatched shapes: qweight "
                              f"{qweight.shape}, qzeros {qzeros.shape}, scales {scales.shape}")
    size = k // groups
    g_idx = np.asarray(tensors.get("g_idx", np.arange(k) // size)).astype(np.int64)
    if g_idx.shape != (k,):
        raise FileFormatError(f"{name}: g_idx of shape {g_idx.shape} for {k} input channels")
    order = None
    if not np.array_equal(g_idx, np.arange(k) // size):
        order = np.argsort(g_idx, kind="stable")
        if not np.array_equal(g_idx[order], np.arange(k) // size):
            raise FileFormatError(f"{name}: g_idx does not give each group {size} channels")
        codes = codes[:, order]
    middle = 1 << (bits - 1)
    if bits == 8:
        if (zeros != middle).any():
            raise FileFormatError(f"{name}: asymmetric 8-bit GPTQ weights are not read (the "
                                  f"int8 layout is symmetric)")
        qweight_ = (codes.astype(np.int16) - middle).astype(np.int8)
        packed = PackedWeight(_readonly(qweight_), _readonly(scales.T), None, 8, size, k)
    elif bits == 4 and (zeros == middle).all():
        packed = PackedWeight(_readonly(pack_int4(codes)), _readonly(scales.T), None, 4, size, k)
    else:
        packed = PackedWeight(_readonly(pack_int4(codes)), _readonly(scales.T),
                              _readonly(zeros.T.astype(np.uint8)), 4, size, k,
                              bits if bits < 4 else None)
    return packed, order, "float32"


def write_layer(packed: PackedWeight, order, activations: str = "float32") -> dict:
    """The tensors of a layer in the original format (``checkpoint_format: "gptq"``, zero
    points stored less one), ``g_idx`` from the input order; 2- and 3-bit layers in their
    own width."""
    codes = packed.codes()                                   # (out, in), as stored
    out, k = codes.shape
    g = packed.group_size
    bits = packed.code_bits
    if packed.bits == 8:
        codes, zeros = codes + 128, np.full((out, k // g), 128)
    elif packed.zeros is None:
        zeros = np.full((out, k // g), 8)
    else:
        zeros = packed.zeros.astype(np.int64)
    if (zeros == 0).any() or (zeros > 1 << bits).any():
        raise FileFormatError(f"GPTQ's original format stores zero points less one, in "
                              f"{bits} bits: it cannot store a zero point of 0 (nor above "
                              f"{1 << bits}); write compressed-tensors instead")
    per = 32 // bits if 32 % bits == 0 else 32
    if k % per or out % per:
        raise FileFormatError(f"GPTQ packs {bits}-bit codes in whole words along both axes, "
                              f"{per} codes at a time: a layer of {out} x {k} is not a "
                              f"multiple of {per} both ways; write compressed-tensors instead")
    g_idx = np.arange(k) // g
    if order is not None:          # the stored channel order is the layer's own
        inverse = np.argsort(order)
        codes, g_idx = codes[:, inverse], g_idx[inverse]
    return {"qweight": pack_words(codes.T, bits, axis=0),
            "qzeros": pack_words((zeros - 1).T, bits, axis=1),
            "scales": np.ascontiguousarray(packed.scales.T),
            "g_idx": g_idx.astype(np.int32)}


def config(packed: PackedWeight, order, activations: str = "float32") -> dict:
    """The ``quantization_config`` of layers like this one."""
    return {"quant_method": "gptq", "bits": packed.code_bits, "group_size": packed.group_size,
            "desc_act": order is not None, "sym": packed.zeros is None,
            "checkpoint_format": "gptq"}
