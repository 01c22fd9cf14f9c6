"""QuantizedEmbedding on a GPU: rows read from the GGML blocks by ``kernels/quant_rows.cu``.

The kernel runs on the CPU emulator of ``tests/backends/cuda_emulator.py`` (each CUDA thread a
coroutine), through the CUDA backend's own launcher (``fused.quant_rows``), so the launch shape
and argument types are checked too:

* every type QuantizedEmbedding keeps (Q8_0 ... Q6_K) against ``gguf.quants.dequantize`` bit for
  bit, on random blocks whose f16 scales include subnormals, signed zeros and the largest
  finite values, for repeated ids, the first and the last row, and ids of any shape;
* ids out of range give NaN rows without a read past the table (no host sync on a GPU);
* ``QuantizedEmbedding.forward`` on an emulated device (arrays in host memory, the CUDA
  launchers as its fused kernels): the kernel is called, the ids never come back to the host,
  the output stays on the device, the table goes up once and is shared with the tied head.

Only ``quant_rows.cu`` (and ``quant_matvec.cu`` for the tied head) are built here, not every
kernel file: the shared ``emulator`` fixture is overridden below.
"""

from __future__ import annotations

import numpy as np
import pytest

gguf = pytest.importorskip("gguf", reason="gguf.quants.dequantize is the reference")

import gradient  # noqa: E402
from gradient.kernels import lookup  # noqa: E402
from gradient.quant import QuantizedEmbedding  # noqa: E402

from ..backends.cuda_emulator import build_emulator  # noqa: E402
from ..backends.test_cuda_kernels import (_check_args, emulated_device,  # noqa: E402,F401
                                          emulated_launchers)

#: every type QuantizedEmbedding keeps quantized, and the byte offsets of its f16 fields
F16_FIELDS = {"Q8_0": (0,), "Q4_0": (0,), "Q4_1": (0, 2), "Q5_0": (0,), "Q5_1": (0, 2),
              "Q2_K": (80, 82), "Q3_K": (108,), "Q4_K": (0, 2), "Q5_K": (0, 2), "Q6_K": (208,)}
#: f16 bit patterns that a careless conversion gets wrong: subnormals (smallest, largest,
#: negative), the smallest normal, signed zeros, the largest finite values, and one. -0 twice in
#: a row: a block of Q4_1/Q5_1 with d = m = -0 gives -0 values (d * q + m is +0 for m = +0)
TRICKY = np.array([0x0001, 0x03FF, 0x8001, 0x0400, 0x8000, 0x8000, 0x0000, 0x7BFF, 0xFBFF,
                   0x3C00], np.uint16)
ROWS = 5
IDS = np.array([[0, 4, 2], [4, 0, 1], [3, 3, 4]])   # repeated, first and last rows, 2-d


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    """The emulator with only the kernel files these tests launch built (overrides the shared
    fixture of test_cuda_kernels, which builds them all)."""
    return build_emulator(tmp_path_factory.mktemp("quant_rows_emulator"), _check_args,
                          ["quant_rows", "quant_matvec"])


def _cols(qtype: str) -> int:
    """Two blocks per row: the kernel must find a block past the first."""
    return 2 * gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[qtype]][0]


def random_blocks(rng, qtype: str, rows: int = ROWS) -> np.ndarray:
    """(rows, row bytes) random blocks of ``qtype`` whose f16 fields are finite (random ones of
    both signs, and every pattern of TRICKY once); every other byte is random."""
    per_block, nbytes = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[qtype]]
    n_blocks = rows * _cols(qtype) // per_block
    blocks = rng.integers(0, 256, (n_blocks, nbytes), dtype=np.uint8)
    fields = F16_FIELDS[qtype]
    halves = rng.integers(0, 0x7C00, (n_blocks, len(fields)), dtype=np.uint16)  # finite, >= 0
    halves |= (rng.integers(0, 2, halves.shape, dtype=np.uint16) << 15)
    assert halves.size >= TRICKY.size
    halves.reshape(-1)[:TRICKY.size] = TRICKY
    for k, offset in enumerate(fields):
        field = np.ascontiguousarray(halves[:, k]).view(np.uint8)
        blocks[:, offset:offset + 2] = field.reshape(-1, 2)
    return blocks.reshape(rows, -1)


def reference(blocks: np.ndarray, qtype: str) -> np.ndarray:
    return gguf.quants.dequantize(blocks, gguf.GGMLQuantizationType[qtype])


def assert_same_bits(actual, expected):
    """Equal bit for bit (assert_array_equal would take -0.0 for 0.0)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == np.float32 and actual.shape == expected.shape
    np.testing.assert_array_equal(actual.view(np.uint32), expected.view(np.uint32))


# ---------------------------------------------------------------------- the launcher and kernel
@pytest.mark.parametrize("qtype", sorted(F16_FIELDS))
def test_kernel_rows_are_the_dequantized_rows_bit_for_bit(emulated_launchers, qtype):
    rng = np.random.default_rng(sorted(F16_FIELDS).index(qtype))
    blocks = random_blocks(rng, qtype)
    table = reference(blocks, qtype)
    assert np.isfinite(table).all()
    ids = np.ascontiguousarray(IDS)   # int64, as the device array of a Tensor of ids
    out = emulated_launchers.quant_rows(blocks, ids, qtype, ROWS, _cols(qtype))
    assert out.shape == IDS.shape + (_cols(qtype),)
    assert_same_bits(out, table[IDS])
    # int32 ids of another shape (converted on the device)
    flat = emulated_launchers.quant_rows(blocks, np.array([4, 0], np.int32), qtype, ROWS,
                                         _cols(qtype))
    assert_same_bits(flat, table[[4, 0]])


def test_kernel_types_are_the_embedding_types(emulated_launchers):
    from gradient.quant import INTERLEAVED_TYPES
    assert emulated_launchers.quant_rows.types == {t.name for t in INTERLEAVED_TYPES}
    assert set(F16_FIELDS) == {t.name for t in INTERLEAVED_TYPES}
    assert lookup("quant_rows", "cuda").fn is emulated_launchers.quant_rows


def test_out_of_range_ids_give_nan_rows_and_the_others_are_right(emulated_launchers):
    rng = np.random.default_rng(1)
    blocks = random_blocks(rng, "Q4_0")
    table = reference(blocks, "Q4_0")
    out = emulated_launchers.quant_rows(blocks, np.array([-1, 2, ROWS, 2 ** 40, 0]), "Q4_0",
                                        ROWS, 64)
    assert np.isnan(out[[0, 2, 3]]).all()
    assert_same_bits(out[[1, 4]], table[[2, 0]])


def test_launcher_declines_what_the_kernel_does_not_take(emulated_launchers):
    blocks = random_blocks(np.random.default_rng(2), "Q8_0")
    rows = emulated_launchers.quant_rows
    assert rows(blocks, np.array([0]), "F16", ROWS, 64) is None           # no kernel
    assert rows(blocks, np.array([0.0]), "Q8_0", ROWS, 64) is None        # float ids
    assert rows(blocks, np.array([0]), "Q8_0", ROWS + 1, 64) is None      # not the table's bytes
    assert rows(blocks, np.array([0]), "Q8_0", ROWS, 48) is None          # not whole blocks
    empty = rows(blocks, np.zeros((2, 0), np.int64), "Q8_0", ROWS, 64)     # no launch
    assert empty.shape == (2, 0, 64) and empty.dtype == np.float32


# ---------------------------------------------------------------------- QuantizedEmbedding
@pytest.fixture
def device(emulated_device, monkeypatch):
    """A device with the quant_rows and quant_matmul launchers; records its transfers."""
    backend, calls = emulated_device("emulated_rows_gpu", ("quant_rows", "quant_matmul"))
    uploads, downloads = [], []
    from_numpy, to_numpy = backend.from_numpy, backend.to_numpy
    monkeypatch.setattr(backend, "from_numpy", lambda a: uploads.append(a.dtype) or from_numpy(a))
    monkeypatch.setattr(backend, "to_numpy", lambda a: downloads.append(a.dtype) or to_numpy(a))
    return backend, calls, uploads, downloads


@pytest.mark.parametrize("qtype", ["Q6_K", "Q4_1"])
def test_embedding_on_a_device_reads_rows_with_the_kernel(device, qtype):
    backend, calls, uploads, downloads = device
    blocks = random_blocks(np.random.default_rng(3), qtype)
    emb = QuantizedEmbedding.from_blocks(blocks, qtype, ROWS, _cols(qtype))
    on_cpu = emb(gradient.tensor(IDS)).numpy()
    assert emb.to("emulated_rows_gpu") is emb          # Module.to: nothing to move, still works
    ids = gradient.tensor(IDS).to("emulated_rows_gpu")
    for _ in range(2):
        del downloads[:]
        out = emb(ids)
        assert downloads == []                         # the ids never came back to the host
        assert out.device.type == "emulated_rows_gpu" and out.dtype == gradient.float32
        assert tuple(out.shape) == IDS.shape + (_cols(qtype),)
        assert_same_bits(out.numpy(), reference(blocks, qtype)[IDS])
        assert_same_bits(out.numpy(), on_cpu)
    assert calls == ["quant_rows"] * 2
    assert uploads.count(np.uint8) == 1                # the table went up once
    # out-of-range ids are not checked on the host there: NaN rows, no sync
    bad = emb(gradient.tensor([ROWS, 1]).to("emulated_rows_gpu")).numpy()
    assert np.isnan(bad[0]).all() and np.isfinite(bad[1]).all()


def test_tied_head_shares_the_tables_device_copy(device):
    backend, calls, uploads, _ = device
    blocks = random_blocks(np.random.default_rng(4), "Q4_1")
    emb = QuantizedEmbedding.from_blocks(blocks, "Q4_1", ROWS, 64)
    head = emb.as_linear()
    hidden = emb(gradient.tensor([[1, 3]]).to("emulated_rows_gpu"))
    with gradient.no_grad():
        logits = head(hidden)
    assert logits.device.type == "emulated_rows_gpu"
    assert calls == ["quant_rows", "quant_matmul"]
    assert uploads.count(np.uint8) == 1                # one copy of the table on the device
    table = reference(blocks, "Q4_1")
    np.testing.assert_allclose(logits.numpy(), table[[[1, 3]]] @ table.T, rtol=1e-5, atol=1e-5)


def test_embedding_on_a_device_without_the_kernel_decodes_on_the_host(emulated_device):
    emulated_device("emulated_plain_gpu", ())
    blocks = random_blocks(np.random.default_rng(5), "Q8_0")
    emb = QuantizedEmbedding.from_blocks(blocks, "Q8_0", ROWS, 64)
    out = emb(gradient.tensor(IDS).to("emulated_plain_gpu"))
    assert out.device.type == "emulated_plain_gpu"     # back on the ids' device
    assert_same_bits(out.numpy(), reference(blocks, "Q8_0")[IDS])
    with pytest.raises(IndexError, match="out of range"):
        emb(gradient.tensor([ROWS]).to("emulated_plain_gpu"))
