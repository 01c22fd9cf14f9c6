"""The devices the conformance tests run on: the CPU, and CUDA when a GPU is present.

The CUDA cases carry the ``gpu`` marker (``pytest -m gpu`` runs only them); without a GPU they
are not generated, so a CPU-only run neither skips nor fails them.

Example::

    @pytest.mark.parametrize("device", DEVICES)
    def test_logits(device): ...
"""

import pytest

import gradient

DEVICES = ["cpu"] + [pytest.param("cuda", marks=pytest.mark.gpu)] * gradient.cuda.is_available()
