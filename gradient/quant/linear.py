"""QuantizedLinear: ``y = x @ W.T + bias`` with ``W`` kept as GGML blocks (the bytes of a GGUF
tensor), multiplied by :func:`gradient.quant.matmul.quantized_matmul` without dequantizing it.

The layer holds the raw blocks as a NumPy array (a memory map of the GGUF file stays a memory
map: nothing is copied, nothing is converted to float32), the GGML type, the shapes and an
optional float bias. It is a drop-in replacement for :class:`gradient.nn.Linear` at inference:

* **No gradient recorded** (``with gradient.no_grad():``, or an input that does not require
  grad): the kernel runs on the input's array and the result is wrapped in a Tensor.
* **Gradient recorded for the input** (fine-tuning adapters on top of a quantized model,
  saliency...): the product is still an autograd ``ArrayFunction`` whose backward is
  ``grad @ W``, computed tile by tile from the blocks (:func:`~gradient.quant.matmul.
  quantized_matmul_t`), and whose own backward is the forward product again, so double
  backward works too. ``W`` itself is frozen: it has no gradient and is not a parameter.
  The bias, when present, is a :class:`~gradient.nn.Parameter` and trains as usual.

Differences from ``nn.Linear``: the weight is not in ``parameters()`` or ``state_dict()`` (its
bytes belong to the GGUF file; only ``bias`` is saved); ``model.to(dtype)`` does not touch it;
the product is computed in float32 whatever the input dtype and cast back to it (autocast does
not lower it); inputs on another device are copied to the host for the product and back.

Example::

    >>> layer = QuantizedLinear.from_blocks(blocks, GGMLType.Q4_1, in_features=576,
    ...                                     out_features=1536)
    >>> with gradient.no_grad():
    ...     y = layer(gradient.randn(1, 576))                         # (1, 1536)
    >>> QuantizedLinear.from_linear(nn.Linear(64, 32), "Q8_0")
    QuantizedLinear(in_features=64, out_features=32, qtype=Q8_0, bias=True, 2.1 KiB)
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np

from .. import kernels
from ..autograd.function import ArrayFunction
from ..backends.cpu_float_rows import lowered_bfloat16_rows, lowered_float_rows
from ..errors import ArgumentTypeError, ArgumentValueError, DTypeError, ShapeError
from ..nn.module import Module
from ..nn.parameter import Parameter
from ..ops.creation import from_numpy
from ..tensor import Tensor
from . import matmul as _qm
from .device_blocks import DeviceBlocks
from .ggml import BLOCK_SIZES, GGMLType, UnsupportedQuantTypeError
from .interleaved import (ACTIVATIONS, INTERLEAVED_TYPES, InterleavedWeight, int8_products,
                          lowered_product, lowered_products,
                          interleaved_matmul_t)

__all__ = ["QuantizedLinear", "quantize", "QUANTIZABLE"]

#: The float GGML types, and the NumPy dtype of their values (a view of the stored bytes).
_FLOAT_VIEWS = {GGMLType.F32: np.dtype(np.float32), GGMLType.BF16: np.dtype(ml_dtypes.bfloat16),
                GGMLType.F16: np.dtype(np.float16)}


# ----------------------------------------------------------------------------- autograd
def _host(ctx, array) -> np.ndarray:
    return array if isinstance(array, np.ndarray) else ctx.backend.to_numpy(array)


def _back(ctx, like, y: np.ndarray):
    """``y`` in the dtype of ``like`` and on its device."""
    y = y.astype(like.dtype, copy=False)
    return y if isinstance(like, np.ndarray) else ctx.backend.from_numpy(y)


class _QuantizedMatmul(ArrayFunction):
    """``x @ W.T`` with W the frozen weight of a quantized layer (not a tensor: it gets no
    gradient). The layer (:class:`QuantizedLinear`, :class:`~gradient.quant.weight_only.
    WeightOnlyLinear`) provides ``_product(x)`` (``x @ W.T``), ``_product_t(g)`` (``g @ W``),
    ``exact()`` (itself with exact float32 products) and ``in_features``/``out_features``."""

    @staticmethod
    def forward(ctx, x, layer):
        ctx.layer = layer
        if ctx.backend.name != "cpu" and hasattr(layer, "_device_product"):
            y = layer._device_product(ctx.backend, x.reshape(-1, x.shape[-1]))
            if y is not None:   # the weight's blocks on the device, read by its kernel
                return y.reshape(x.shape[:-1] + (layer.out_features,)).astype(x.dtype, copy=False)
        x_host = _host(ctx, x)
        y = layer._product(x_host.reshape(-1, x_host.shape[-1]))
        return _back(ctx, x, y.reshape(x_host.shape[:-1] + (layer.out_features,)))

    @staticmethod
    def backward(ctx, grad):
        return _QuantizedMatmulT.apply(grad, ctx.layer), None

    @staticmethod
    def specialize(ctx, x, layer):
        """For a captured step (see :class:`~gradient.autograd.function.ArrayFunction`): the
        layer's product prepared for inputs of x's shape on the CPU, or None."""
        prepared = getattr(layer, "_prepared_product", None)
        if ctx.backend.name != "cpu" or prepared is None or type(x) is not np.ndarray:
            return None
        shape, rows = x.shape, (-1, x.shape[-1])
        product = prepared(x.reshape(rows))
        if product is None:
            return None
        kernel, weight_args = product
        out_shape = shape[:-1] + (layer.out_features,)

        def forward(ctx_, x_, layer_):
            if layer_ is not layer or x_.shape != shape:
                return _QuantizedMatmul.forward(ctx_, x_, layer_)
            return kernel(x_.reshape(rows), *weight_args).reshape(out_shape)

        forward.lower = lambda ctx_, x_, layer_: (
            layer._lowered_product(x_, (math.prod(shape[:-1]), shape[-1]), out_shape)
            if layer_ is layer and x_.shape == shape else None)
        if layer.packed is None:     # a float weight (F32, F16, BF16): nothing to merge
            return forward
        packed, activations = weight_args
        if activations == "int8" and x.dtype == np.float32 and x.flags.c_contiguous:
            # products of the same activations (q, k, v; gate, up) run as one in a replayed
            # step (gradient.capture.plan._merged): one quantization, one parallel loop
            forward.merge_key, forward.merge_limit = ("int8 interleaved", shape), 3
            forward.layer, forward.packed, forward.out_shape = layer, packed, out_shape
            forward.merge_with = lambda others: _merged_products(shape, rows, [forward, *others])
        return forward


class _QuantizedMatmulT(ArrayFunction):
    """``g @ W``: the backward of :class:`_QuantizedMatmul`, whose backward is that again."""

    @staticmethod
    def forward(ctx, g, layer):
        ctx.layer = layer
        g_host = _host(ctx, g)
        out = layer._product_t(g_host.reshape(-1, g_host.shape[-1]))
        return _back(ctx, g, out.reshape(g_host.shape[:-1] + (layer.in_features,)))

    @staticmethod
    def backward(ctx, grad):
        # the first derivative is linear in W and exact: its derivative is the exact product
        return _QuantizedMatmul.apply(grad, ctx.layer.exact()), None


def _merged_products(shape, rows, forwards):
    """One replayed call for several specialized :class:`_QuantizedMatmul` forwards of the
    same input (see ``specialize``): a function of the first one's arguments returning each
    one's result."""
    weights = [f.packed for f in forwards]
    out_shapes = [f.out_shape for f in forwards]

    def products(ctx_, x_, layer_):
        if x_.shape != shape:
            return tuple(f(ctx_, x_, f.layer) for f in forwards)
        ys = int8_products(x_.reshape(rows), weights)
        kernels.record("interleaved_matmul", "numba", len(ys))   # counted in active traces
        return tuple(y.reshape(s) for y, s in zip(ys, out_shapes))
    products.lower = lambda ctx_, x_, layer_: (
        lowered_products(x_, (math.prod(shape[:-1]), shape[-1]), weights, out_shapes)
        if x_.shape == shape else None)
    return products


# ----------------------------------------------------------------------------- quantizing
#: Types :func:`quantize` (and so :meth:`QuantizedLinear.from_linear`) can produce.
QUANTIZABLE = (GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q8_0, GGMLType.Q4_0,
               GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1)


def _inverse(d: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.where(d == 0, np.float32(0), np.float32(1) / d).astype(np.float32)


def _f16_bytes(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float16).view(np.uint8)


def _nibbles(q: np.ndarray) -> np.ndarray:
    """32 values 0..15 per block -> 16 bytes: value j low nibble, value j + 16 high nibble."""
    return (q[:, :16] & 15) | ((q[:, 16:] & 15) << 4)


def _fifth_bits(q: np.ndarray) -> np.ndarray:
    """Bit 4 of the 32 values of each block, as a little-endian uint32 (bit j: value j)."""
    return np.packbits((q >> 4).astype(np.uint8), axis=-1, bitorder="little")


def _signed_max(b: np.ndarray) -> np.ndarray:
    """Per block, the value of largest magnitude, with its sign (the first one on ties)."""
    return np.take_along_axis(b, np.abs(b).argmax(axis=-1)[:, None], axis=-1)


def quantize(weight, qtype) -> np.ndarray:
    """GGML blocks of a float (out_features, in_features) weight, as llama.cpp's reference
    quantizer writes them (round to nearest, scales stored as float16): a uint8 array of shape
    (out_features, row bytes), bit-exact with ``gguf.quants.quantize``.

    Types: :data:`QUANTIZABLE`. The k-quants (Q4_K ...) search for their scales; quantize to
    them with llama.cpp's ``llama-quantize`` and load the blocks with
    :meth:`QuantizedLinear.from_blocks`.

    Example: ``quantize(np.ones((2, 32), np.float32), "Q8_0").shape == (2, 34)``
    """
    qtype = _as_type(qtype)
    if qtype not in QUANTIZABLE:
        raise UnsupportedQuantTypeError(
            f"quantize: cannot quantize to {qtype.name}; gradient quantizes to "
            f"{', '.join(t.name for t in QUANTIZABLE)}. For k-quants use llama.cpp's "
            f"llama-quantize, then QuantizedLinear.from_blocks")
    w = np.asarray(weight, dtype=np.float32)
    if w.ndim != 2:
        raise ShapeError(f"quantize: expected a 2-d weight (out_features, in_features), got "
                         f"shape {w.shape}")
    m, k = w.shape
    block, _ = BLOCK_SIZES[qtype]
    if k % block:
        raise ShapeError(f"quantize: {qtype.name} stores rows in blocks of {block} values; "
                         f"in_features={k} is not a multiple of {block}")
    if qtype == GGMLType.F32:
        return np.ascontiguousarray(w).view(np.uint8)
    if qtype == GGMLType.F16:
        return _f16_bytes(w)
    if qtype == GGMLType.BF16:
        bits = np.ascontiguousarray(w).view(np.uint32).astype(np.uint64)
        nan = (bits & 0x7FFFFFFF) > 0x7F800000
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16     # round to nearest even
        quiet = ((bits & 0xFFFF0000) | (64 << 16)) >> 16          # NaN: keep it a (quiet) NaN
        return np.where(nan, quiet, rounded).astype(np.uint16).view(np.uint8)
    b = w.reshape(-1, 32)
    if qtype == GGMLType.Q8_0:
        d = np.abs(b).max(axis=-1, keepdims=True) / np.float32(127)
        v = b * _inverse(d)
        a = np.abs(v)
        f = np.floor(a)
        q = (np.sign(v) * (f + (a - f >= 0.5))).astype(np.int8)   # roundf: halves away from 0
        out = np.concatenate([_f16_bytes(d), q.view(np.uint8)], axis=-1)
    elif qtype in (GGMLType.Q4_0, GGMLType.Q5_0):
        levels = 8 if qtype == GGMLType.Q4_0 else 16
        d = _signed_max(b) / np.float32(-levels)
        v = np.trunc(b * _inverse(d) + np.float32(levels + 0.5))
        q = np.clip(v, 0, 2 * levels - 1).astype(np.uint8)
        parts = [_f16_bytes(d), _nibbles(q)]
        if qtype == GGMLType.Q5_0:
            parts.insert(1, _fifth_bits(q))
        out = np.concatenate(parts, axis=-1)
    else:                                   # Q4_1, Q5_1: scale and minimum
        levels = 15 if qtype == GGMLType.Q4_1 else 31
        lo = b.min(axis=-1, keepdims=True)
        d = (b.max(axis=-1, keepdims=True) - lo) / np.float32(levels)
        v = np.trunc((b - lo) * _inverse(d) + np.float32(0.5))
        q = np.clip(v, 0, levels).astype(np.uint8)
        parts = [_f16_bytes(d), _f16_bytes(lo), _nibbles(q)]
        if qtype == GGMLType.Q5_1:
            parts.insert(2, _fifth_bits(q))
        out = np.concatenate(parts, axis=-1)
    return np.ascontiguousarray(out).reshape(m, -1)


def _as_type(qtype) -> GGMLType:
    """A GGMLType from a GGMLType, an int id, a gguf GGMLQuantizationType or a name."""
    try:
        if isinstance(qtype, str):
            return GGMLType[qtype.upper()]
        return GGMLType(int(qtype))
    except (KeyError, ValueError, TypeError):
        raise UnsupportedQuantTypeError(
            f"unknown GGML type {qtype!r}; expected a GGMLType, its id or its name, one of "
            f"{', '.join(t.name for t in _qm.MATMUL_TYPES)}") from None


# ----------------------------------------------------------------------------- the layer
def check_input(layer, input) -> None:
    """What a quantized linear layer accepts: a floating-point Tensor whose last dimension is
    ``layer.in_features`` (QuantizedLinear and weight_only.WeightOnlyLinear)."""
    name = type(layer).__name__
    if not isinstance(input, Tensor):
        raise ArgumentTypeError(f"{name}: expected a gradient.Tensor, got {type(input).__name__}")
    if input.ndim == 0 or input.shape[-1] != layer.in_features:
        raise ShapeError(f"{name}: input of shape {tuple(input.shape)} has "
                         f"{input.shape[-1] if input.ndim else 0} features, expected "
                         f"{layer.in_features}")
    if not input.is_floating_point():
        raise DTypeError(f"{name}: expected a floating-point input, got {input.dtype}; "
                         "convert it with .float()")


class _QuantizedLayer(Module):
    """What :class:`QuantizedLinear` and :class:`~gradient.quant.weight_only.WeightOnlyLinear`
    share: ``y = x @ W.T + bias`` through :class:`_QuantizedMatmul`, whose protocol
    (``_product``, ``_product_t``, ``exact()``, ``in_features``/``out_features``) each provides."""

    def forward(self, input: Tensor) -> Tensor:
        check_input(self, input)
        y = _QuantizedMatmul.apply(input, self)
        if self.bias is None:
            return y
        bias = self.bias if self.bias.dtype is y.dtype else self.bias.to(y.dtype)
        return y + bias


class QuantizedLinear(_QuantizedLayer):
    """``y = x @ W.T + bias`` over the last dimension of ``x``, with ``W`` stored as GGML
    blocks of type ``qtype`` (see the module docstring for what differs from ``nn.Linear``).

    Build it with :meth:`from_blocks` (a GGUF tensor's bytes) or :meth:`from_linear`
    (quantize a float layer); :meth:`dequantize` gives the float weight back.

    ``activations`` chooses the product, for the types that :mod:`gradient.quant.interleaved`
    repacks (Q4_0 ... Q6_K):

    * ``"float32"`` (the default): the exact weights times float32 x (what
      dequantize-then-matmul gives, up to summation order). Every row of x is computed alone,
      the same way for a decode step's one row as for a prompt's hundreds, so a prompt's
      logits are those of its tokens decoded one by one.
    * ``"int8"`` (as llama.cpp): each 32 values of x quantized to int8, integer dot
      products; for many rows (a prompt) about twice as fast, and about 0.5% relative error
      per product on top of the weights' own; each row computed alone too.

    The float types (F32, F16) are always exact. A BF16 weight is exact with ``"float32"``
    and takes ``"bfloat16"`` too, llama.cpp's product for it: each value of x rounded to
    bfloat16 (nearest even), pairs of products summed by the CPU's bfloat16 dot product
    (a short prompt's products about twice as fast where the CPU has one).
    The gradient of x (training through a frozen quantized layer) is always the exact
    ``g @ W``.

    Example::

        >>> layer = QuantizedLinear.from_blocks(reader_tensor.data, "Q6_K", 4096, 4096)
        >>> y = layer(x)                     # x (..., 4096) -> y (..., 4096)
    """

    def __init__(self, blocks, qtype, in_features: int, out_features: int, bias=None,
                 activations: str = "float32", packed: InterleavedWeight | None = None):
        super().__init__()
        qtype = _as_type(qtype)
        if qtype not in _qm.MATMUL_TYPES:
            raise UnsupportedQuantTypeError(
                f"QuantizedLinear: no kernel for GGML type {qtype.name}; supported: "
                f"{', '.join(t.name for t in _qm.MATMUL_TYPES)}. Dequantize the weight "
                f"(gradient.quant.dequantize) and use nn.Linear")
        if activations not in ACTIVATIONS + ("bfloat16",):
            raise ArgumentValueError(
                f"QuantizedLinear: activations must be one of {ACTIVATIONS} or "
                f"'bfloat16' (BF16 weights), got {activations!r}")
        if activations == "bfloat16" and qtype != GGMLType.BF16:
            raise ArgumentValueError(
                f"QuantizedLinear: activations='bfloat16' is the product of a BF16 "
                f"weight, not of {qtype.name}; use 'float32' or 'int8'")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.qtype = qtype
        self.activations = activations
        # a read-only (out_features, row bytes) view of the caller's bytes: never copied
        # when contiguous, never converted
        self.qweight = _qm._as_blocks(blocks, int(qtype), self.out_features, self.in_features)
        # a float type's weight as its (out_features, in_features) values, a view of the bytes:
        # what the decoding products read in place (gradient.backends.cpu_float_rows)
        self._float = (self.qweight.view(_FLOAT_VIEWS[qtype]) if qtype in _FLOAT_VIEWS
                       else None)
        # the repacked copy the products read (a tied embedding shares its own: ``packed``)
        if packed is None and qtype in INTERLEAVED_TYPES:
            packed = InterleavedWeight.from_blocks(self.qweight, qtype, self.out_features,
                                                   self.in_features)
        self.packed = packed
        self._device_blocks = DeviceBlocks(self.qweight)   # uploaded to a device on first use
        if bias is None:
            self.register_parameter("bias", None)
        else:
            if isinstance(bias, Tensor):
                bias = bias.detach().numpy()
            bias = np.array(bias, dtype=np.float32)    # a copy: the layer owns its bias
            if bias.shape != (self.out_features,):
                raise ShapeError(f"QuantizedLinear: bias must have shape ({self.out_features},), "
                                 f"got {bias.shape}")
            self.bias = Parameter(from_numpy(bias))

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_blocks(cls, blocks, qtype, in_features: int, out_features: int,
                    bias=None, activations: str = "float32") -> "QuantizedLinear":
        """A layer over the raw bytes of a GGML weight of shape (out_features, in_features).

        ``blocks``: any contiguous array of the tensor's bytes (GGUFReader's tensor data, a
        memory map, ``gguf.quants.quantize``'s output); kept as is, not copied (the types
        with int8 kernels also get a repacked copy, see :mod:`gradient.quant.interleaved`).
        ``qtype``: a :class:`~gradient.quant.ggml.GGMLType`, its id or its name (``"Q4_K"``).
        ``bias``: None or out_features floats (copied into a float32 Parameter).
        """
        return cls(blocks, qtype, in_features, out_features, bias, activations)

    @classmethod
    def from_linear(cls, linear, qtype="Q8_0", activations: str = "float32") -> "QuantizedLinear":
        """Quantize a float :class:`gradient.nn.Linear` (its weight and bias) to ``qtype``,
        one of :data:`QUANTIZABLE` (see :func:`quantize`).

        Example: ``QuantizedLinear.from_linear(model.lm_head, "Q8_0")``
        """
        weight = linear.weight.detach().numpy()
        bias = linear.bias.detach().numpy() if linear.bias is not None else None
        out_features, in_features = weight.shape
        return cls(quantize(weight, qtype), qtype, in_features, out_features, bias, activations)

    # ------------------------------------------------------------------ use
    def _product(self, x: np.ndarray) -> np.ndarray:
        """``x @ W.T`` for a 2-d float array x."""
        if self.packed is not None:
            return kernels.call("interleaved_matmul", "cpu", x, self.packed, self.activations)
        if self.activations == "bfloat16":   # llama.cpp's: x rounded to bfloat16 first
            y = kernels.call("bfloat16_rows_product", "cpu", x, self._float)
            if y is not None:
                return y
            x = x.astype(ml_dtypes.bfloat16).astype(np.float32)   # many rows: BLAS's GEMM
        elif self._float is not None:    # a few rows: the weight read once, in place
            y = kernels.call("float_rows_product", "cpu", x, self._float)
            if y is not None:
                return y
        return kernels.call("quant_matmul", "cpu", x, self.qweight, self.qtype.name,
                            self.out_features, self.in_features)

    def _prepared_product(self, x: np.ndarray):
        """:meth:`_product` prepared for later calls on arrays of x's shape (a captured
        step; see ``gradient.kernels.prepare``): ``(kernel, args)`` with ``kernel(x, *args)``
        the product, or None."""
        if self.packed is not None:
            kernel = kernels.prepare("interleaved_matmul", "cpu", x, self.packed,
                                     self.activations)
            return None if kernel is None else (kernel, (self.packed, self.activations))
        if self._float is not None:
            name = ("bfloat16_rows_product" if self.activations == "bfloat16"
                    else "float_rows_product")
            kernel = kernels.prepare(name, "cpu", x, self._float)
            return None if kernel is None else (kernel, (self._float,))
        return None

    def _lowered_product(self, x, rows, out_shape):
        """The compiled form (:mod:`gradient.kernels.lowering`) of :meth:`_product` of x
        reshaped to ``rows``, reshaped to ``out_shape``; None where there is none."""
        if self.packed is not None:
            return lowered_product(x, rows, self.packed, self.activations, out_shape)
        if self.activations == "bfloat16":
            return lowered_bfloat16_rows(x, rows, self._float, out_shape)
        if self._float is not None:
            return lowered_float_rows(x, rows, self._float, out_shape)
        return None

    def _product_t(self, g: np.ndarray) -> np.ndarray:
        """``g @ W`` for a 2-d float array g."""
        if self.packed is not None:
            return interleaved_matmul_t(g, self.packed)
        return _qm._matmul_t_2d(g, self.qweight, int(self.qtype))

    def _device_product(self, backend, x):
        """``x @ W.T`` on a GPU backend that has a kernel for this type (the blocks are uploaded
        once, on first use); None otherwise (the product then runs on the host)."""
        kernel = kernels.lookup("quant_matmul", backend)
        if kernel is None or self.qtype.name not in getattr(kernel.fn, "types", ()):
            return None
        return kernel(x, self._device_blocks.on(backend), self.qtype.name, self.out_features,
                      self.in_features)

    def exact(self) -> "QuantizedLinear":
        """This layer with ``activations="float32"`` (itself when it already is), sharing
        the weight."""
        if self.activations == "float32" or (self.packed is None
                                             and self.activations != "bfloat16"):
            return self
        return QuantizedLinear(self.qweight, self.qtype, self.in_features, self.out_features,
                               activations="float32", packed=self.packed)

    def dequantize(self) -> Tensor:
        """The weight as a float32 (out_features, in_features) tensor (a new array).

        Example: ``nn.Linear``'s weight is ``layer.dequantize()`` up to quantization error.
        """
        if self.packed is not None:
            return from_numpy(self.packed.dequantize())
        return from_numpy(_qm.dequantize_rows(self.qweight, int(self.qtype), self.out_features,
                                              self.in_features))

    @property
    def nbytes(self) -> int:
        """Bytes the weight takes in memory: the repacked copy when there is one, else the
        GGML blocks."""
        return int(self.packed.nbytes if self.packed is not None else self.qweight.nbytes)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"qtype={self.qtype.name}, bias={self.bias is not None}, "
                f"activations={self.activations}, {_size(self.nbytes)}")


def _size(nbytes: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if nbytes >= 1 << shift:
            return f"{nbytes / (1 << shift):.1f} {unit}"
    return f"{nbytes} B"
