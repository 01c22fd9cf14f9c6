"""Which plugins are installed, and how each is started.

A plugin is found, by name, in this order:

1. built in: ``reference`` (:mod:`.reference`, NumPy in a separate process), and ``webgpu``
   (:mod:`.webgpu`) where the ``wgpu`` package is installed (``pip install gradient[webgpu]``);
2. a Python package's entry point in the group ``gradient.plugins``: its name is the plugin's,
   and it loads to the command line that starts it (a list of strings, or a function
   returning one);
3. an executable named ``gradient-plugin-NAME`` in a directory of ``GRADIENT_PLUGIN_PATH``
   (``os.pathsep``-separated).

Example::

    >>> sorted(installed())
    ['reference']
    >>> command("reference")
    ['/usr/bin/python3', '-m', 'gradient.backends.plugin.reference']
"""

from __future__ import annotations

import os
import sys

from ...errors import DeviceError

__all__ = ["installed", "command", "environment", "PREFIX"]

PREFIX = "gradient-plugin-"
_BUILTIN = {"reference": [sys.executable, "-m", "gradient.backends.plugin.reference"],
            "webgpu": [sys.executable, "-m", "gradient.backends.plugin.webgpu"]}


def _builtin() -> dict:
    """The built-in plugins this installation can run (webgpu needs the wgpu package)."""
    import importlib.util
    return {name: argv for name, argv in _BUILTIN.items()
            if name != "webgpu" or importlib.util.find_spec("wgpu") is not None}


def installed() -> dict[str, str]:
    """Every plugin found, by name, with where it was found."""
    found = {name: "built in" for name in _builtin()}
    for ep in _entry_points():
        found.setdefault(ep.name, f"entry point {ep.value}")
    for folder in _path():
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for file in sorted(names):
            path = os.path.join(folder, file)
            if file.startswith(PREFIX) and os.access(path, os.X_OK) and os.path.isfile(path):
                found.setdefault(file[len(PREFIX):], path)
    return found


def command(name: str) -> list[str]:
    """The command line that starts plugin ``name``; DeviceError if none is installed."""
    builtin = _builtin()
    if name in builtin:
        return list(builtin[name])
    if name == "webgpu":
        raise DeviceError("the webgpu plugin needs the wgpu package: pip install 'gradient[webgpu]' "
                          "(and, on Linux, a Vulkan driver: apt-get install mesa-vulkan-drivers "
                          "libvulkan1)")
    for ep in _entry_points():
        if ep.name == name:
            target = ep.load()
            argv = target() if callable(target) else target
            return [str(a) for a in argv]
    for folder in _path():
        path = os.path.join(folder, PREFIX + name)
        if os.access(path, os.X_OK) and os.path.isfile(path):
            return [path]
    raise DeviceError(f"no plugin named {name!r} is installed (found: "
                      f"{', '.join(sorted(installed())) or 'none'}); install one, or put an "
                      f"executable named {PREFIX}{name} in a folder of GRADIENT_PLUGIN_PATH")


def environment(name: str) -> dict[str, str]:
    """Environment defaults for a built-in plugin's process (what the user's environment
    sets wins). The reference plugin computes with NumPy beside the client, which keeps a core
    busy sending it requests; its BLAS threads that finished a product poll for the next one
    for 2**16 cycles (tens of microseconds) before they sleep, not OpenBLAS's 2**28 (a tenth
    of a second, measured: the char_gpt step 52-56 ms against 40-41), so that they leave the
    client its core (shorter than the 2**20 :mod:`gradient.threads` gives this process)."""
    from ...threads import BLAS_THREAD_TIMEOUT
    if name != "reference" or os.environ.get("OPENBLAS_THREAD_TIMEOUT",
                                             BLAS_THREAD_TIMEOUT) != BLAS_THREAD_TIMEOUT:
        return {}
    return {"OPENBLAS_THREAD_TIMEOUT": "16"}


def _entry_points():
    from importlib.metadata import entry_points
    try:
        return list(entry_points(group="gradient.plugins"))
    except Exception:   # noqa: BLE001  (broken package metadata: no entry points)
        return []


def _path() -> list[str]:
    return [p for p in os.environ.get("GRADIENT_PLUGIN_PATH", "").split(os.pathsep) if p]
