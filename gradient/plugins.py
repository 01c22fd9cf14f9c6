"""The plugins installed on this machine: devices served by another process
(``"plugin:NAME"``; see ``docs/plugin-protocol.md``).

Example::

    >>> gradient.plugins.list()
    {'reference': 'built in'}
    >>> gradient.ones(3, device="plugin:reference")
"""

from __future__ import annotations

from .backends.plugin.discovery import installed

__all__ = ["list"]


def list() -> dict[str, str]:   # noqa: A001  (gradient.plugins.list(), as the issue names it)
    """Every plugin found, by name, with where it was found (built in, an entry point of the
    ``gradient.plugins`` group, or a path on ``GRADIENT_PLUGIN_PATH``)."""
    return installed()
