"""The devices the conformance tests run on: the CPU, CUDA when a GPU is present, and the
plugin devices when ``GRADIENT_TEST_PLUGINS`` names them (a comma-separated list such as
``reference,tinyc,webgpu``; ``.ci/run`` runs the conformance suite over them as a second
pass).
``tinyc`` is the C plugin of ``examples/plugin_c/``, compiled here with the system's C compiler
(left out, with a note, where there is none); ``webgpu`` is left out where no WebGPU adapter
is found.

The CUDA cases carry the ``gpu`` marker (``pytest -m gpu`` runs only them); without a GPU they
are not generated, so a CPU-only run neither skips nor fails them. The plugin cases carry the
``plugin`` marker.

Example::

    @pytest.mark.parametrize("device", DEVICES)
    def test_logits(device): ...
"""

import atexit
import os
import shutil
import subprocess
import tempfile

import pytest

import gradient

C_PLUGIN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "examples", "plugin_c", "plugin.c")


def build_c_plugin(folder: str, name: str = "tinyc") -> str | None:
    """Compile the C plugin into ``folder`` as ``gradient-plugin-NAME``; its path, or None
    without a C compiler."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        return None
    path = os.path.join(folder, f"gradient-plugin-{name}")
    subprocess.run([cc, "-O2", "-o", path, C_PLUGIN, "-lm"], check=True, capture_output=True)
    return path


def _plugins() -> list[str]:
    names = [name for name in os.environ.get("GRADIENT_TEST_PLUGINS", "").split(",") if name]
    if "tinyc" in names:
        folder = tempfile.mkdtemp(prefix="gradient-plugins-")
        atexit.register(shutil.rmtree, folder, True)
        if build_c_plugin(folder) is None:
            print("tests/devices.py: no C compiler, so no plugin:tinyc cases")
            names.remove("tinyc")
        else:   # found by the plugin discovery of this process
            os.environ["GRADIENT_PLUGIN_PATH"] = os.pathsep.join(
                [folder] + [p for p in os.environ.get("GRADIENT_PLUGIN_PATH", "").split(os.pathsep) if p])
    if "webgpu" in names:
        try:   # the plugin starts where wgpu finds an adapter (here: Mesa's software Vulkan)
            gradient.backends.get_backend("plugin:webgpu").hello()
        except gradient.errors.DeviceError as e:
            print(f"tests/devices.py: no plugin:webgpu cases ({str(e).splitlines()[0]})")
            names.remove("webgpu")
    return names


PLUGINS = _plugins()
DEVICES = (["cpu"] + [pytest.param("cuda", marks=pytest.mark.gpu)] * gradient.cuda.is_available()
           + [pytest.param(f"plugin:{name}", marks=pytest.mark.plugin) for name in PLUGINS])
