"""Devices served by another process: the plugin backend (``docs/plugin-protocol.md``).

``"plugin:NAME"`` (or ``"plugin:NAME:N"``, the plugin's device N) is a device like any other:
``tensor.to("plugin:reference")``, ``model.to("plugin:reference")``. Each device used starts one
process of the plugin (found by :mod:`.discovery`), with ``GRADIENT_PLUGIN_DEVICE=N`` in its
environment; the :class:`PluginBackend` sends it the primitives. A crash in the plugin raises
:class:`~gradient.errors.PluginError`; the next tensor made on the device starts it again.

Example::

    >>> x = gradient.ones(3, device="plugin:reference")
    >>> (x * 2).sum().item()
    6.0
"""

from __future__ import annotations

from .backend import PluginBackend
from .discovery import command, installed

__all__ = ["PluginBackend", "loader", "installed"]


def loader(device_type: str):
    """``(loader(index), device_count())`` for the device type ``"plugin:NAME"``, for
    :func:`gradient.backends.register_backend`."""
    name = device_type.partition(":")[2]
    argv = command(name)      # DeviceError now if no such plugin is installed
    backends: dict = {}

    def backend(index: int) -> PluginBackend:
        if index not in backends:
            backends[index] = PluginBackend(name, argv, index)
        return backends[index]

    def count() -> int:
        return max(1, len(backend(0).hello().get("devices", ())))

    return backend, count
