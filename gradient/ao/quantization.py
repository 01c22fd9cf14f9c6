"""``gradient.ao.quantization``: PyTorch's ``torch.ao.quantization`` names for dynamic
quantization, so that ported scripts run: :func:`quantize_dynamic` (see
:mod:`gradient.quant.dynamic`) and the qconfigs scripts pass in a dict (``{nn.Linear:
default_dynamic_qconfig}``), which stand for the dtype they name.

Example::

    >>> from gradient.ao.quantization import quantize_dynamic
    >>> q = quantize_dynamic(model, {gradient.nn.Linear}, dtype=gradient.qint8)
"""

from ..quant.dynamic import (QConfig, default_dynamic_qconfig, float16_dynamic_qconfig,
                             per_channel_dynamic_qconfig, qint8, quantize_dynamic)

__all__ = ["quantize_dynamic", "qint8", "QConfig", "default_dynamic_qconfig",
           "per_channel_dynamic_qconfig", "float16_dynamic_qconfig"]
