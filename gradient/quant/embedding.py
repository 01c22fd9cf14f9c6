"""QuantizedEmbedding: an embedding table kept in a GGML type, rows decoded on lookup.

The token embedding of a language model is often its largest matrix (SmolLM2-135M: 49152 x 576,
28M of its 135M weights), and GGUF files store it quantized (Q8_0, Q6_K ...). Dequantizing it
to float32 at load would take 113 MB for SmolLM2; this layer keeps it repacked (see
:mod:`gradient.quant.interleaved`) and decodes only the rows looked up, exactly as ggml does.
With tied embeddings the output head is a :class:`~gradient.quant.QuantizedLinear` over the
same repacked table (:meth:`QuantizedEmbedding.as_linear`), so the table is held once.

The table is frozen: lookups return float32 tensors that need no gradient for the table.

Example::

    >>> emb = QuantizedEmbedding.from_blocks(reader.raw("token_embd.weight"), "Q8_0", 49152, 576)
    >>> emb(gradient.tensor([[1, 2, 3]])).shape
    (1, 3, 576)
    >>> head = emb.as_linear()              # logits = head(hidden), the same table
"""

from __future__ import annotations

from ..errors import DTypeError
from ..nn.module import Module
from ..ops.creation import from_numpy
from ..tensor import Tensor
from .ggml import UnsupportedQuantTypeError
from .interleaved import INTERLEAVED_TYPES, InterleavedWeight
from .linear import QuantizedLinear, _as_type, _size
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
        if qtype not in INTERLEAVED_TYPES:
            raise UnsupportedQuantTypeError(
                f"QuantizedEmbedding: GGML type {qtype.name} is not kept quantized; types: "
                f"{', '.join(t.name for t in INTERLEAVED_TYPES)}. Dequantize it into "
                f"nn.Embedding instead")
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        self.qtype = qtype
        self.qweight = _as_blocks(blocks, int(qtype), self.num_embeddings, self.embedding_dim)
        self.packed = InterleavedWeight.from_blocks(self.qweight, qtype, self.num_embeddings,
                                                    self.embedding_dim)

    @classmethod
    def from_blocks(cls, blocks, qtype, num_embeddings: int,
                    embedding_dim: int) -> "QuantizedEmbedding":
        """A table over the raw bytes of a GGML tensor of shape (num_embeddings, embedding_dim)."""
        return cls(blocks, qtype, num_embeddings, embedding_dim)

    def forward(self, input: Tensor) -> Tensor:
        if not isinstance(input, Tensor):
            raise TypeError(f"QuantizedEmbedding: expected a gradient.Tensor of token ids, got "
                            f"{type(input).__name__}")
        if input.dtype.is_floating_point:
            raise DTypeError(f"QuantizedEmbedding: expected integer ids, got {input.dtype}")
        ids = input.numpy()
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_embeddings):
            bad = ids.min() if ids.min() < 0 else ids.max()
            raise IndexError(f"QuantizedEmbedding: id {int(bad)} is out of range for a table "
                             f"of {self.num_embeddings} rows")
        return from_numpy(self.packed.rows(ids))

    def as_linear(self, activations: str = "int8") -> QuantizedLinear:
        """``x @ table.T`` as a :class:`QuantizedLinear` sharing this table (a tied head)."""
        return QuantizedLinear(self.qweight, self.qtype, self.embedding_dim, self.num_embeddings,
                               activations=activations, packed=self.packed)

    def dequantize(self) -> Tensor:
        """The table as a float32 tensor (a new array)."""
        return from_numpy(self.packed.dequantize())

    @property
    def nbytes(self) -> int:
        """Bytes of the repacked table."""
        return int(self.packed.nbytes)

    def extra_repr(self) -> str:
        return (f"{self.num_embeddings}, {self.embedding_dim}, qtype={self.qtype.name}, "
                f"{_size(self.nbytes)}")
