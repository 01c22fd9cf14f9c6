"""Shared by the GGUF tests (tests/quant, tests/io/test_gguf.py, tests/models/test_gguf_loader.py):
where the real SmolLM2 GGUF file is, and a small GGUF writer over ``gguf.GGUFWriter``.

The real file is never downloaded by the tests. They look for it, in this order, at
``$GRADIENT_SMOLLM2_GGUF`` and under ``tests/fixtures/models/`` (gitignored; CI puts it there),
and skip with the reason when it is absent.
"""

import glob
import os

import numpy as np
import pytest

gguf = pytest.importorskip("gguf", reason="the gguf package is the test oracle for GGUF files")

SMOLLM2_ENV = "GRADIENT_SMOLLM2_GGUF"
FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "models")
SMOLLM2_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_path() -> str | None:
    """The real SmolLM2-135M-Instruct Q4_1 file, or None."""
    path = os.environ.get(SMOLLM2_ENV)
    if path:
        return path if os.path.isfile(path) else None
    candidates = sorted(glob.glob(os.path.join(FIXTURES, "**", SMOLLM2_NAME), recursive=True))
    return candidates[0] if candidates else None


requires_smollm2 = pytest.mark.skipif(
    smollm2_path() is None,
    reason=f"the real GGUF file is absent: set {SMOLLM2_ENV}=/path/to/{SMOLLM2_NAME} or put it "
           f"under tests/fixtures/models/")


def write_gguf(path, arch="llama", kv=(), tensors=(), alignment=None):
    """Write a GGUF file with ``gguf.GGUFWriter``.

    ``kv``: ``(key, value, GGUFValueType)`` triples (arrays: ``(key, list, ARRAY, item type)``).
    ``tensors``: ``(name, float32 array, GGMLQuantizationType)``; the array is quantized with
    ``gguf.quants.quantize``, or ``(name, uint8 bytes, type)`` already in the type's blocks.
    """
    T = gguf.GGMLQuantizationType
    w = gguf.GGUFWriter(os.fspath(path), arch)
    if alignment is not None:
        w.add_custom_alignment(alignment)
    for item in kv:
        w.add_key_value(*item)
    for name, array, qtype in tensors:
        array = np.asarray(array)
        if array.dtype == np.uint8 and qtype not in (T.I8,):
            w.add_tensor(name, array, raw_dtype=qtype)
        elif qtype in (T.F32, T.F16):
            w.add_tensor(name, array.astype(np.float32 if qtype == T.F32 else np.float16))
        else:
            w.add_tensor(name, gguf.quants.quantize(array.astype(np.float32), qtype),
                         raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return os.fspath(path)
