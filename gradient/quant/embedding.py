"""QuantizedEmbedding: an embedding table kept in a GGML type, rows decoded on lookup.

The token embedding of a language model is often its largest matrix (SmolLM2-135M: 49152 x 576,
28M of its 135M weights), and GGUF files store it quantized (Q8_0, Q6_K ...). Dequantizing it
to float32 at load would take 113 MB for SmolLM2; this layer keeps it repacked (see
:mod:`gradient.quant.interleaved`) and decodes only the rows looked up, exactly as ggml does.
With tied embeddings the output head is a :class:`~gradient.quant.QuantizedLinear` over the
same repacked table (:meth:`QuantizedEmbedding.as_linear`), so the table is held once.

The table is frozen: lookups return float32 tensors that need no gradient for the table.

On a GPU (ids on a device whose backend has the ``quant_rows`` kernel for the type) the rows are
decoded there: the table's GGML blocks go up to the device on the first lookup (shared with the
tied head), and the ids never come back to the host. ``Module.to(device)`` leaves the table on
the host (it is not a parameter); the first lookup on the device uploads it.

Example::

    >>> emb = QuantizedEmbedding.from_blocks(reader.raw("token_embd.weight"), "Q8_0", 49152, 576)
    >>> emb(gradient.tensor([[1, 2, 3]])).shape
    (1, 3, 576)
    >>> head = emb.as_linear()              # logits = head(hidden), the same table
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..errors import ArgumentTypeError, DTypeError, IndexRangeError
from ..nn.module import Module
from ..ops.creation import from_numpy
from ..tensor import Tensor
from .device_blocks import DeviceBlocks
from .ggml import UnsupportedQuantTypeError
from .interleaved import INTERLEAVED_TYPES, InterleavedWeight
from .linear import _FLOAT_VIEWS, QuantizedLinear, _as_type, _size
from .matmul import _as_blocks

__all__ = ["QuantizedEmbedding"]


class QuantizedEmbedding(Module):
    """A (num_embeddings, embedding_dim) lookup table stored in a GGML type; ``forward(ids)``
    returns the rows ``ids`` as float32, bit-exact with the dequantized table.

    Example: ``QuantizedEmbedding.from_blocks(blocks, "Q6_K", vocab, hidden)(ids)``
    """

    def __init__(self, blocks, qtype, num_embeddings: int, embedding_dim: int):
        super().__init__()
        qtype = _as_type(qtype)
        if qtype not in INTERLEAVED_TYPES and qtype not in _FLOAT_VIEWS:
            raise UnsupportedQuantTypeError(
                f"QuantizedEmbedding: GGML type {qtype.name} is not kept quantized; types: "
                f"{', '.join(t.name for t in (*INTERLEAVED_TYPES, *_FLOAT_VIEWS))}. Dequantize "
                f"it into nn.Embedding instead")
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        self.qtype = qtype
        self.qweight = _as_blocks(blocks, int(qtype), self.num_embeddings, self.embedding_dim)
        # the block types repacked for their kernels; a float type (F32, F16, BF16) as its
        # values, a view of the stored bytes, in the file's precision
        self.packed = (InterleavedWeight.from_blocks(self.qweight, qtype, self.num_embeddings,
                                                     self.embedding_dim)
                       if qtype in INTERLEAVED_TYPES else None)
        self._float = self.qweight.view(_FLOAT_VIEWS[qtype]) if self.packed is None else None
        self._device_blocks = DeviceBlocks(self.qweight)   # uploaded to a device on first use

    @classmethod
    def from_blocks(cls, blocks, qtype, num_embeddings: int,
                    embedding_dim: int) -> "QuantizedEmbedding":
        """A table over the raw bytes of a GGML tensor of shape (num_embeddings, embedding_dim)."""
        return cls(blocks, qtype, num_embeddings, embedding_dim)

    def forward(self, input: Tensor) -> Tensor:
        """The rows ``input`` (integer ids of any shape): float32 of shape
        ``input.shape + (embedding_dim,)``, on the ids' device.

        On the CPU an id outside ``[0, num_embeddings)`` raises IndexError. On a device with the
        ``quant_rows`` kernel the ids are not brought back to the host to check them: such an id
        gives a row of NaN instead. On a device without it, the ids are copied to the host, checked
        and the rows decoded there, and the result goes back to the ids' device.
        """
        if not isinstance(input, Tensor):
            raise ArgumentTypeError(
                f"QuantizedEmbedding: expected a gradient.Tensor of token ids, got "
                f"{type(input).__name__}")
        if input.dtype.is_floating_point:
            raise DTypeError(f"QuantizedEmbedding: expected integer ids, got {input.dtype}")
        backend = input._backend
        if backend.name != "cpu":
            rows = self._device_rows(backend, input._data)
            if rows is not None:
                return Tensor._make(rows, False, backend)
        ids = input.numpy()
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_embeddings):
            bad = ids.min() if ids.min() < 0 else ids.max()
            raise IndexRangeError(f"QuantizedEmbedding: id {int(bad)} is out of range for a table "
                                  f"of {self.num_embeddings} rows")
        rows = from_numpy(self.packed.rows(ids) if self.packed is not None
                          else self._float[ids].astype(np.float32))
        return rows if backend.name == "cpu" else rows.to(input.device)

    def _device_rows(self, backend, ids):
        """The rows ``ids`` (a device array) decoded on the device by the backend's
        ``quant_rows`` kernel (the blocks uploaded once, on first use); None when the backend
        has no kernel for this type."""
        kernel = kernels.lookup("quant_rows", backend)
        if kernel is None or self.qtype.name not in getattr(kernel.fn, "types", ()):
            return None
        return kernel(self._device_blocks.on(backend), ids, self.qtype.name,
                      self.num_embeddings, self.embedding_dim)

    def as_linear(self, activations: str = "float32") -> QuantizedLinear:
        """``x @ table.T`` as a :class:`QuantizedLinear` sharing this table (a tied head)."""
        head = QuantizedLinear(self.qweight, self.qtype, self.embedding_dim, self.num_embeddings,
                               activations=activations, packed=self.packed)
        head._device_blocks = self._device_blocks   # one copy of the table on a device, too
        return head

    def dequantize(self) -> Tensor:
        """The table as a float32 tensor (a new array)."""
        if self.packed is None:
            return from_numpy(self._float.astype(np.float32))
        return from_numpy(self.packed.dequantize())

    @property
    def nbytes(self) -> int:
        """Bytes of the table: the repacked blocks, or a float type's values."""
        return int(self.packed.nbytes if self.packed is not None else self.qweight.nbytes)

    def extra_repr(self) -> str:
        return (f"{self.num_embeddings}, {self.embedding_dim}, qtype={self.qtype.name}, "
                f"{_size(self.nbytes)}")
