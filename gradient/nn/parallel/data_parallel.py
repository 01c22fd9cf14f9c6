"""``torch.nn.DataParallel`` and ``data_parallel``, for scripts that wrap their model in them.

PyTorch's DataParallel splits each batch over several GPUs in one process, runs a copy of the
module on each and gathers the outputs on one. On one device, or on a machine without a GPU,
it runs the module as it is, and so does gradient's. Across several GPUs gradient raises a
:class:`~gradient.errors.DeviceError` that says to use ``DistributedDataParallel`` with one
process per GPU instead (what PyTorch's own documentation recommends over DataParallel).

The wrapper keeps PyTorch's layout: the model is ``.module``, and its state dict's keys start
with ``module.``, so checkpoints move between the two.

Example::

    >>> model = nn.DataParallel(Net())           # one device: Net() itself runs
    >>> loss = criterion(model(x), y)
    >>> gradient.save(model.module.state_dict(), "net.safetensors")
"""

from __future__ import annotations

from ...backends import cuda as _cuda
from ...device import as_device
from ...errors import DeviceError
from ..module import Module

__all__ = ["DataParallel", "data_parallel"]


def _device_ids(device_ids, output_device) -> tuple[list, object]:
    """The GPUs to run on and the output's, as PyTorch picks them: every visible GPU unless
    ``device_ids`` says; none without a GPU. More than one: a DeviceError."""
    if not _cuda.available()[0]:
        return [], None
    ids = list(range(_cuda.device_count())) if device_ids is None else [
        d if isinstance(d, int) else as_device(d).index or 0 for d in device_ids]
    if len(ids) > 1:
        raise DeviceError(f"DataParallel over {len(ids)} GPUs ({ids}) is not supported: use "
                          f"gradient.nn.parallel.DistributedDataParallel with one process per "
                          f"GPU (gradient run --nproc {len(ids)} script.py), or give "
                          f"device_ids=[one GPU]")
    return ids, (ids[0] if output_device is None and ids else output_device)


class DataParallel(Module):
    """``module`` run on the batch, on one device (see the module docstring); ``dim`` is kept
    for PyTorch's signature (the dimension a batch would be split along)."""

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0):
        super().__init__()
        self.module = module
        self.dim = dim
        self.device_ids, output = _device_ids(device_ids, output_device)
        if self.device_ids:                 # as PyTorch: no output_device without a GPU
            self.output_device = output

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)


def data_parallel(module: Module, inputs, device_ids=None, output_device=None, dim: int = 0,
                  module_kwargs=None):
    """``module(*inputs, **module_kwargs)``, as :class:`DataParallel` runs it (one device)."""
    _device_ids(device_ids, output_device)
    if not isinstance(inputs, tuple):
        inputs = (inputs,)
    return module(*inputs, **(module_kwargs or {}))
