"""``gradient.quantization``: PyTorch's older ``torch.quantization`` path, with the names of
:mod:`gradient.ao.quantization` (dynamic quantization, :mod:`gradient.quant.dynamic`).

Example: ``gradient.quantization.quantize_dynamic(model, {gradient.nn.Linear})``
"""

from .quant.dynamic import (QConfig, default_dynamic_qconfig, float16_dynamic_qconfig,
                            per_channel_dynamic_qconfig, qint8, quantize_dynamic)

__all__ = ["quantize_dynamic", "qint8", "QConfig", "default_dynamic_qconfig",
           "per_channel_dynamic_qconfig", "float16_dynamic_qconfig"]
