"""Utilities around training: :mod:`gradient.utils.data` (datasets, samplers, DataLoader),
:mod:`gradient.utils.checkpoint`, and :mod:`gradient.utils.tensorboard` (SummaryWriter; imported
on its own, as it needs the ``tensorboard`` package), :mod:`gradient.utils.dlpack`.

Example::

    from gradient.utils.data import DataLoader, TensorDataset
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
"""

from . import checkpoint, data, dlpack

__all__ = ["checkpoint", "data", "dlpack"]
