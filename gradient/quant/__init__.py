"""Quantized weights: GGML's block formats (the tensors of GGUF files), their dequantization,
and matrix products that read the blocks directly.

* :mod:`gradient.quant.ggml` -- the GGML tensor types (:class:`GGMLType`), their block sizes,
  and :func:`dequantize`, numba kernels that turn Q4_0 ... Q6_K blocks into float32 exactly as
  ggml does.
* :mod:`gradient.quant.matmul` -- :func:`quantized_matmul`, ``x @ W.T`` with ``W`` kept in its
  blocks: rows decoded into a cache-sized buffer for a few rows of ``x`` (decode), tiles
  dequantized into BLAS for many (prefill).
* :mod:`gradient.quant.linear` -- :class:`QuantizedLinear`, the layer over those products, and
  :func:`quantize`, which writes Q8_0/Q4_0/Q4_1/Q5_0/Q5_1 blocks as ggml does.

A GGUF model is still dequantized to float32 when it is loaded (see
:mod:`gradient.models.gguf_loader`); :class:`QuantizedLinear` is the layer that will keep it
quantized.

Example::

    >>> from gradient.quant import GGMLType, dequantize, QuantizedLinear
    >>> w = dequantize(raw_bytes, GGMLType.Q4_K, (4096, 4096))
    >>> layer = QuantizedLinear.from_linear(nn.Linear(512, 256), "Q8_0")
"""

from .ggml import (BLOCK_SIZES, DEQUANTIZABLE, GGMLType, UnsupportedQuantTypeError, dequantize,
                   tensor_nbytes, type_name)
from .linear import QUANTIZABLE, QuantizedLinear, quantize
from .matmul import MATMUL_TYPES, dequantize_rows, quantized_matmul, quantized_matmul_t

__all__ = ["GGMLType", "BLOCK_SIZES", "DEQUANTIZABLE", "UnsupportedQuantTypeError", "dequantize",
           "tensor_nbytes", "type_name", "QuantizedLinear", "quantize", "QUANTIZABLE",
           "quantized_matmul", "quantized_matmul_t", "dequantize_rows", "MATMUL_TYPES"]
