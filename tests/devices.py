"""The devices the conformance tests run on: the CPU, CUDA when a GPU is present, and the
plugin devices when ``GRADIENT_TEST_PLUGINS`` names them (a comma-separated list such as
``reference``; ``.ci/run`` runs the conformance suite over them as a second pass).

The CUDA cases carry the ``gpu`` marker (``pytest -m gpu`` runs only them); without a GPU they
are not generated, so a CPU-only run neither skips nor fails them. The plugin cases carry the
``plugin`` marker.

Example::

    @pytest.mark.parametrize("device", DEVICES)
    def test_logits(device): ...
"""

import os

import pytest

import gradient

PLUGINS = [name for name in os.environ.get("GRADIENT_TEST_PLUGINS", "").split(",") if name]
DEVICES = (["cpu"] + [pytest.param("cuda", marks=pytest.mark.gpu)] * gradient.cuda.is_available()
           + [pytest.param(f"plugin:{name}", marks=pytest.mark.plugin) for name in PLUGINS])
