"""``torch.nn.parallel``: :class:`DistributedDataParallel`; and tensor parallelism's
:class:`ColumnParallelLinear` and :class:`RowParallelLinear` (Megatron-LM's)."""

from .distributed import DistributedDataParallel
from .tensor_parallel import ColumnParallelLinear, RowParallelLinear

__all__ = ["DistributedDataParallel", "ColumnParallelLinear", "RowParallelLinear"]
