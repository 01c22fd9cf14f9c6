"""Quantized weights: GGML's block formats (the tensors of GGUF files), weight-only int8/int4,
matrix products that read the packed weights directly, and measuring what quantization costs.

* :mod:`gradient.quant.ggml` -- the GGML tensor types (:class:`GGMLType`), their block sizes,
  and :func:`dequantize`, numba kernels that turn Q4_0 ... Q6_K blocks into float32 exactly as
  ggml does.
* :mod:`gradient.quant.matmul` -- :func:`quantized_matmul`, ``x @ W.T`` with ``W`` kept in its
  blocks: rows decoded into a cache-sized buffer for a few rows of ``x`` (decode), tiles
  dequantized into BLAS for many (prefill).
* :mod:`gradient.quant.interleaved` -- the same blocks repacked with 32 rows interleaved
  (:class:`InterleavedWeight`) and the int8-activation kernels over them (llama.cpp's way of
  decoding: 4 times faster than the row-by-row kernels).
* :mod:`gradient.quant.linear` -- :class:`QuantizedLinear`, the layer over those products, and
  :mod:`gradient.quant.embedding` -- :class:`QuantizedEmbedding`, a table decoded on lookup
  (``gradient.hub.load("x.gguf")`` builds models of them).
* :mod:`gradient.quant.weight_only` -- :func:`quantize`: a model's Linear layers to int8 (per
  output channel), int4 (group-wise, optional zero points) or a GGML type
  (:class:`WeightOnlyLinear`, read by the interleaved kernels / :class:`QuantizedLinear`);
  given an array instead of a model, it writes GGML blocks (Q8_0/Q4_0/Q4_1/Q5_0/Q5_1 as ggml
  does, Q4_K as llama.cpp does).
* :mod:`gradient.quant.quality` -- :func:`~gradient.quant.quality.evaluate`: perplexity, mean
  KL divergence and top-1 agreement of a quantized model against its float original.
* :mod:`gradient.quant.calibration` -- a model run over calibration token ids one block at a
  time, with the statistics of each linear layer's inputs (:func:`calibrate_blocks`).
* :mod:`gradient.quant.gptq` -- :func:`gptq`: 3/4/8-bit weights whose rounding errors are
  compensated column by column from the calibration inputs (GPTQ).
* :mod:`gradient.quant.awq` -- :func:`awq`: the weight columns that meet large activations
  scaled up before rounding, the activations scaled down in the norm or layer before (AWQ).
* :mod:`gradient.quant.smoothquant` -- :func:`smoothquant`: int8 weights and per-token int8
  activations (W8A8), the activations' outlying channels moved into the weights first.
* :mod:`gradient.quant.dynamic` -- :func:`quantize_dynamic`, PyTorch's dynamic quantization
  (int8 weights, activations quantized as they arrive).

Example::

    >>> q8 = gradient.quant.quantize(model, "int8")               # a copy; model is unchanged
    >>> q4 = gradient.quant.quantize(model, "int4", group_size=32)
    >>> gradient.quant.quality.evaluate(model, q4, ids)["kl_mean"]
"""

from .ggml import (BLOCK_SIZES, DEQUANTIZABLE, GGMLType, UnsupportedQuantTypeError, dequantize,
                   tensor_nbytes, type_name)
from .linear import QUANTIZABLE, QuantizedLinear, quantize
from .embedding import QuantizedEmbedding
from .interleaved import INTERLEAVED_TYPES, InterleavedWeight, interleaved_matmul
from .matmul import MATMUL_TYPES, dequantize_rows, quantized_matmul, quantized_matmul_t
# weight-only int8/int4 and model quantization. ``quantize`` takes a model or a weight: it
# replaces linear.quantize (the GGML block writer) here, and calls it for arrays
from .weight_only import quantize  # noqa: F811
from .weight_only import (GGML_SCHEMES, SCHEMES, PackedWeight, WeightOnlyLinear, pack_int4,
                          quantize_blocks, quantize_model, quantize_q4_k, quantize_weight,
                          unpack_int4, weight_only_matmul)
from . import calibration, quality
from .gptq import gptq, gptq_quantize
from .awq import awq
from .smoothquant import smoothquant
from .dynamic import qint8, quantize_dynamic

__all__ = ["GGMLType", "BLOCK_SIZES", "DEQUANTIZABLE", "UnsupportedQuantTypeError", "dequantize",
           "tensor_nbytes", "type_name", "QuantizedLinear", "QuantizedEmbedding",
           "InterleavedWeight", "interleaved_matmul", "INTERLEAVED_TYPES", "quantize", "QUANTIZABLE",
           "quantized_matmul", "quantized_matmul_t", "dequantize_rows", "MATMUL_TYPES",
           "quantize_model", "quantize_weight", "quantize_blocks", "quantize_q4_k",
           "PackedWeight", "WeightOnlyLinear", "weight_only_matmul", "pack_int4", "unpack_int4",
           "SCHEMES", "GGML_SCHEMES", "quality", "calibration", "gptq", "gptq_quantize", "awq",
           "smoothquant",
           "quantize_dynamic", "qint8"]
