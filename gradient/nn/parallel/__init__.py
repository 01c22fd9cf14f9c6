"""``torch.nn.parallel``: :class:`DistributedDataParallel`; and tensor parallelism's
:class:`ColumnParallelLinear`, :class:`RowParallelLinear` and :class:`VocabParallelEmbedding`
(Megatron-LM's)."""

from .distributed import DistributedDataParallel
from .tensor_parallel import ColumnParallelLinear, RowParallelLinear, VocabParallelEmbedding

__all__ = ["DistributedDataParallel", "ColumnParallelLinear", "RowParallelLinear",
           "VocabParallelEmbedding"]
