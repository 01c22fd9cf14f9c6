"""``torch.nn.parallel``: :class:`DataParallel` (one device; see its module),
:class:`DistributedDataParallel`; and tensor parallelism's :class:`ColumnParallelLinear`,
:class:`RowParallelLinear` and :class:`VocabParallelEmbedding` (Megatron-LM's)."""

from .data_parallel import DataParallel, data_parallel
from .distributed import DistributedDataParallel
from .tensor_parallel import ColumnParallelLinear, RowParallelLinear, VocabParallelEmbedding

__all__ = ["DataParallel", "data_parallel", "DistributedDataParallel", "ColumnParallelLinear",
           "RowParallelLinear", "VocabParallelEmbedding"]
