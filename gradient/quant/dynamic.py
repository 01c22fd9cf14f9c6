"""``quantize_dynamic``: PyTorch's dynamic quantization (``torch.ao.quantization.
quantize_dynamic``), so that a ported script that calls it runs and gets what it asked for:
linear layers with 8-bit weights whose activations are quantized to 8 bits as they arrive.

* ``dtype=gradient.qint8``: each selected ``nn.Linear`` becomes a
  :class:`~gradient.quant.linear.QuantizedLinear` over Q8_0 blocks (int8 weights, one float16
  scale per 32) with int8 activations (each row quantized per 32 values at run time, int8 x
  int8 products summed in int32): llama.cpp's arithmetic, which is what gradient's integer
  kernels compute. A layer whose ``in_features`` is not a multiple of 32 gets int8 weights
  per output channel with float activations instead (:class:`~gradient.quant.weight_only.
  WeightOnlyLinear`). PyTorch's own kernels (fbgemm) quantize a whole batch with one scale;
  the results differ from PyTorch's by quantization noise, not in kind.
* ``dtype=gradient.float16``: the weights stored in float16, the products in float32 (as
  PyTorch's ``float16`` dynamic quantization).

``qconfig_spec`` selects the layers as PyTorch's does: a set of module types (``{nn.Linear}``,
the default), or a dict whose keys are types or layer names (its values, PyTorch's qconfigs,
are not read). Recurrent layers (``nn.LSTM``, ``nn.GRU``), which PyTorch also quantizes, stay
in float here, with a warning.

Example::

    >>> q = gradient.quant.quantize_dynamic(model, {nn.Linear}, dtype=gradient.qint8)
    >>> q(x)                       # the same shapes; the model given is left unchanged
"""

from __future__ import annotations

import warnings

from ..dtypes import float16
from ..nn.module import Module
from ..nn.modules.linear import Linear
from .linear import QuantizedLinear
from .weight_only import WeightOnlyLinear, replace_layers
from ..errors import ArgumentTypeError, ArgumentValueError

__all__ = ["quantize_dynamic", "qint8", "QuantizedDType", "QConfig", "default_dynamic_qconfig",
           "per_channel_dynamic_qconfig", "float16_dynamic_qconfig"]


class QuantizedDType:
    """A quantized dtype as PyTorch names them (``torch.qint8``): what ``quantize_dynamic``
    is asked to store weights in. Not a dtype of tensors here: quantized layers hold their
    codes themselves."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"gradient.{self.name}"

    def __reduce__(self):
        return (_named, (self.name,))


#: 8-bit signed integers, PyTorch's ``torch.qint8``.
qint8 = QuantizedDType("qint8")


def _named(name: str) -> QuantizedDType:
    return {"qint8": qint8}[name]


class QConfig:
    """PyTorch's dynamic qconfigs, by the dtype of weights each stands for: the values of a
    ``qconfig_spec`` dict (``{nn.Linear: float16_dynamic_qconfig}``)."""

    def __init__(self, name: str, dtype):
        self.name, self.dtype = name, dtype

    def __repr__(self) -> str:
        return self.name


default_dynamic_qconfig = QConfig("default_dynamic_qconfig", qint8)
per_channel_dynamic_qconfig = QConfig("per_channel_dynamic_qconfig", qint8)
float16_dynamic_qconfig = QConfig("float16_dynamic_qconfig", float16)


def _selected(spec, dtype) -> dict:
    """``{module type or layer name: weight dtype}`` that ``qconfig_spec`` selects: a set's
    entries take ``dtype``, a dict's the dtype of their qconfig."""
    if spec is None:
        spec = {Linear}
    if isinstance(spec, (type, str)):
        spec = [spec]
    chosen = {}
    for key in spec:
        if not isinstance(key, (str, type)):
            raise ArgumentTypeError(
                f"quantize_dynamic: qconfig_spec keys are module types or layer "
                f"names, got {key!r}")
        value = spec[key] if isinstance(spec, dict) else None
        chosen[key] = value.dtype if isinstance(value, QConfig) else dtype
    return chosen


def quantize_dynamic(model: Module, qconfig_spec=None, dtype=qint8, mapping=None,
                     inplace: bool = False) -> Module:
    """The model with its selected ``nn.Linear`` layers dynamically quantized (see the module
    docstring); ``inplace=False`` (PyTorch's default) leaves ``model`` as it was and returns a
    copy.

    Example: ``quantize_dynamic(model, {nn.Linear}, dtype=gradient.qint8)``
    """
    if not isinstance(model, Module):
        raise ArgumentTypeError(f"quantize_dynamic: expected a gradient.nn.Module, got "
                                f"{type(model).__name__}")
    if mapping is not None:
        raise ArgumentTypeError(
            "quantize_dynamic: mapping= maps float modules to PyTorch's quantized "
            "module classes; gradient chooses its own quantized layers, leave it "
            "out")
    if dtype is not qint8 and dtype is not float16:
        raise ArgumentValueError(
            f"quantize_dynamic: dtype must be gradient.qint8 or gradient.float16, "
            f"got {dtype!r}")
    chosen = _selected(qconfig_spec, dtype)
    others = sorted(t.__name__ for t in chosen if isinstance(t, type) and t is not Linear)
    if others:
        warnings.warn(f"quantize_dynamic: only nn.Linear layers are quantized here; "
                      f"{', '.join(others)} layers stay in float", stacklevel=2)

    def convert(name, module):
        if type(module) is not Linear:
            return None
        # a name selects its layer and the layers inside it (the longest name decides)
        named = [n for n in chosen if isinstance(n, str) and (name == n or
                                                              name.startswith(n + "."))]
        if named:
            wanted = chosen[max(named, key=len)]
        elif Linear in chosen:
            wanted = chosen[Linear]
        else:
            return None
        if wanted is float16:
            return QuantizedLinear.from_linear(module, "F16")
        if module.in_features % 32 == 0:
            return QuantizedLinear.from_linear(module, "Q8_0", activations="int8")
        return WeightOnlyLinear.from_linear(module, bits=8)
    return replace_layers(model, convert, inplace)
