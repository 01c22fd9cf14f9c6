"""Quantized checkpoints as the Hugging Face hub has them: ``config.json``'s
``quantization_config`` with ``quant_method`` ``"gptq"``, ``"awq"`` or
``"compressed-tensors"``, read into :class:`~gradient.quant.weight_only.WeightOnlyLinear`
layers (kept quantized: the interleaved kernels read them) and written back from them.

One module per format (:mod:`.gptq`, :mod:`.awq`, :mod:`.compressed_tensors`) says how a
layer's tensors hold its codes, scales and zero points, each with the same face: ``SUFFIXES``
(a layer's tensors), ``ACTIVATIONS`` (what the format can say of its inputs),
``read_layer(config, tensors, name) -> (PackedWeight, input_order, activations)``,
``write_layer(packed, input_order, activations)`` and ``config(...)`` of the same;
:mod:`.packing` packs codes into int32 words for all three. :func:`read_layers` and :func:`write_layers` are what
:meth:`gradient.models.PreTrainedModel.from_pretrained` and ``save_pretrained`` call.

Example::

    >>> model = gradient.models.from_pretrained("TheBloke/TinyLlama-1.1B-Chat-v1.0-GPTQ")
    >>> model.save_pretrained("out/", quantization_format="compressed-tensors")
"""

from __future__ import annotations

import numpy as np

from ...errors import FileFormatError
from ..ggml import UnsupportedQuantTypeError
from ..weight_only import WeightOnlyLinear
from . import awq, compressed_tensors, gptq

__all__ = ["FORMATS", "read_layers", "write_layers"]

#: quant_method -> the module of its format.
FORMATS = {"gptq": gptq, "awq": awq, "compressed-tensors": compressed_tensors}


def _codec(config: dict):
    method = str(config.get("quant_method", "")).lower()
    if method not in FORMATS:
        raise UnsupportedQuantTypeError(
            f"quantization_config's quant_method {config.get('quant_method')!r} is not one "
            f"gradient reads; it reads {', '.join(FORMATS)}")
    return FORMATS[method]


def _quantized_prefixes(config: dict, names) -> list:
    """The layers a checkpoint holds quantized, by the tensors that mark them."""
    method = str(config.get("quant_method", "")).lower()
    if method in ("gptq", "awq"):
        return sorted(n[:-len(".qweight")] for n in names if n.endswith(".qweight"))
    prefixes = {n[:-len(".weight_packed")] for n in names if n.endswith(".weight_packed")}
    prefixes |= {n[:-len(".weight_scale")] for n in names if n.endswith(".weight_scale")
                 and n[:-len("_scale")] in names
                 and compressed_tensors.scheme_of(config, n[:-len(".weight_scale")])}
    return sorted(prefixes)


def read_layers(config: dict, names, read) -> tuple[dict, set]:
    """``({layer name: WeightOnlyLinear}, consumed tensor names)`` for a checkpoint with the
    ``quantization_config`` ``config`` and the tensors ``names``, ``read(name)`` giving a
    tensor's array. A layer's bias stays a tensor of the checkpoint (the layer has a bias
    parameter for it, loaded with the rest)."""
    codec = _codec(config)
    names = set(names)
    layers, consumed = {}, set()
    for prefix in _quantized_prefixes(config, names):
        tensors = {s: read(f"{prefix}.{s}") for s in codec.SUFFIXES if f"{prefix}.{s}" in names}
        try:
            result = codec.read_layer(config, tensors, prefix)
        except KeyError as e:
            raise FileFormatError(f"{prefix}: the checkpoint lacks its {e.args[0]} tensor") \
                from None
        packed, order, activations = result
        bias = (np.zeros(packed.out_features, np.float32) if f"{prefix}.bias" in names
                else None)
        layers[prefix] = WeightOnlyLinear(packed, bias, activations=activations,
                                          input_order=order)
        consumed |= {f"{prefix}.{s}" for s in tensors}
    return layers, consumed


def write_layers(model, quantization_format: str) -> tuple[dict, dict]:
    """``(quantization_config, {tensor name: array})`` for the model's
    :class:`~gradient.quant.weight_only.WeightOnlyLinear` layers in ``quantization_format``
    (a ``quant_method``); the layers' biases are written with the other parameters."""
    codec = _codec({"quant_method": quantization_format})
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, WeightOnlyLinear)]
    tensors, configs = {}, {}
    for name, layer in layers:
        packed, order, activations = layer.packed_weight(), layer.input_order, layer.activations
        if activations not in codec.ACTIVATIONS:
            raise FileFormatError(f"{name}: {quantization_format} checkpoints have float "
                                  f"activations; write layers with activations="
                                  f"{activations!r} as compressed-tensors")
        for suffix, array in codec.write_layer(packed, order, activations).items():
            tensors[f"{name}.{suffix}"] = array
        configs[name] = codec.config(packed, order, activations)
    if codec is not compressed_tensors:
        distinct = {tuple(sorted(c.items())) for c in configs.values()}
        if len(distinct) > 1:
            raise FileFormatError(f"{quantization_format} checkpoints have one scheme for every "
                                  f"layer; these layers have {len(distinct)}: write them as "
                                  f"compressed-tensors")
        return next(iter(configs.values())), tensors
    return _compressed_tensors_config(model, configs), tensors


def _compressed_tensors_config(model, configs: dict) -> dict:
    """Config groups of the layers with one scheme each: ``"Linear"`` with the float layers
    ignored where there is one scheme, else each layer by name."""
    from ...nn.modules.linear import Linear
    schemes: dict = {}
    for name, c in configs.items():
        schemes.setdefault(repr(sorted(c.items(), key=str)), (c, []))[1].append(name)
    floats = [name for name, m in model.named_modules() if type(m) is Linear]
    groups = {}
    for i, (c, names) in enumerate(schemes.values()):
        targets = ["Linear"] if len(schemes) == 1 else names
        groups[f"group_{i}"] = {**c, "targets": targets}
    formats = {g["format"] for g in groups.values()}
    return {"quant_method": "compressed-tensors", "quantization_status": "compressed",
            "format": formats.pop() if len(formats) == 1 else "mixed-precision",
            "config_groups": groups, "ignore": floats if len(schemes) == 1 else [],
            "kv_cache_scheme": None, "sparsity_config": {}, "transform_config": {}}
