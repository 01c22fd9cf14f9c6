"""``gradient.onnx``: importable as ``torch.onnx`` is, for scripts that import it at the top for an
optional export; gradient has no ONNX exporter.

:func:`export` (and ``dynamo_export``) raise :class:`OnnxExporterError` (a
:class:`~gradient.errors.GradientError` and a RuntimeError, as PyTorch's), saying so and what
to do instead: save the weights with ``gradient.save`` (safetensors), which PyTorch loads, and
export from PyTorch. :func:`is_in_onnx_export` is False, as outside an export in PyTorch.

Example::

    >>> import gradient.onnx
    >>> gradient.onnx.is_in_onnx_export()
    False
"""

from __future__ import annotations

from .errors import GradientError

__all__ = ["export", "dynamo_export", "is_in_onnx_export", "OnnxExporterError"]


class OnnxExporterError(GradientError, RuntimeError):
    """An ONNX export was asked of gradient, which has no exporter."""


_NO_EXPORTER = ("gradient has no ONNX exporter. Save the model's weights with "
                "gradient.save(model.state_dict(), 'model.safetensors') (safetensors, which "
                "PyTorch reads with safetensors.torch.load_file), load them into the same model "
                "in PyTorch and export it there with torch.onnx.export")


def export(*args, **kwargs):
    """Not available: raises :class:`OnnxExporterError` (see the module docstring)."""
    raise OnnxExporterError(f"gradient.onnx.export: {_NO_EXPORTER}")


def dynamo_export(*args, **kwargs):
    """Not available: raises :class:`OnnxExporterError` (see the module docstring)."""
    raise OnnxExporterError(f"gradient.onnx.dynamo_export: {_NO_EXPORTER}")


def is_in_onnx_export() -> bool:
    """False: nothing runs inside an ONNX export in gradient."""
    return False
