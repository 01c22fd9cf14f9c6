"""DeviceBlocks: the GGML blocks of a frozen quantized weight, uploaded to a device once.

A quantized layer keeps its blocks as a host array (often a memory map of the GGUF file). A GPU
kernel that reads them (``quant_matmul`` for :class:`~gradient.quant.QuantizedLinear`,
``quant_rows`` for :class:`~gradient.quant.QuantizedEmbedding`) needs them in device memory:
they go up on the first call on that device and stay there, one copy per device type. The
blocks are frozen, so a copy never goes stale. A tied embedding and its output head share one
``DeviceBlocks``, so the table is held once on the device too.

``Module.to(device)`` does not upload them (they are not parameters): the first forward on the
device does.

A :class:`~gradient.quant.WeightOnlyLinear` keeps several arrays (codes, scales, zero points)
in a :class:`DeviceArrays` the same way.

Example::

    >>> blocks = DeviceBlocks(layer.qweight)
    >>> w = blocks.on(backend)          # the device array; the same one on every later call
"""

from __future__ import annotations

import numpy as np

__all__ = ["DeviceBlocks", "DeviceArrays"]


class DeviceBlocks:
    """Per-device copies of one host array of GGML blocks (uint8, a row of blocks per row),
    made on first use by :meth:`on`."""

    def __init__(self, blocks: np.ndarray):
        self.blocks = blocks
        self._copies = DeviceArrays()

    def on(self, backend):
        """The blocks as an array of ``backend`` (uploaded on the first call, then reused)."""
        return self._copies.on(backend, lambda: (self.blocks,))[0]

    def __repr__(self) -> str:
        return f"DeviceBlocks({self.blocks.nbytes} bytes, on {self._copies.devices()})"


class DeviceArrays:
    """Per-device copies of a frozen weight's host arrays, made on first use by :meth:`on`
    (the host arrays are only formed then: a layer that never leaves the CPU pays nothing)."""

    def __init__(self):
        self._copies: dict = {}   # backend name -> a tuple of that backend's arrays

    def on(self, backend, host) -> tuple:
        """The arrays ``host()`` returns (a tuple; None entries stay None) as arrays of
        ``backend``: uploaded on the first call, then reused.

        Example: ``codes, scales = arrays.on(backend, lambda: (layer.codes, layer.scales))``
        """
        copy = self._copies.get(backend.name)
        if copy is None:
            copy = tuple(None if a is None else backend.from_numpy(np.ascontiguousarray(a))
                         for a in host())
            self._copies[backend.name] = copy
        return copy

    def devices(self):
        """The backends holding a copy (sorted names), or ``"no device"``."""
        return sorted(self._copies) or "no device"

    def __repr__(self) -> str:
        return f"DeviceArrays(on {self.devices()})"
