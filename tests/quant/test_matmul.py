"""quantized_matmul and dequantize_rows against the gguf package (the reference quantizer and
dequantizer): every GGML type, one token and prefill batches, shapes that do not divide evenly."""

import numba
import numpy as np
import pytest

from gradient.errors import ShapeError
from gradient.quant import matmul as qm
from gradient.quant.ggml import BLOCK_SIZES, GGMLType, UnsupportedQuantTypeError
from gradient.quant.matmul import (MATMUL_TYPES, dequantize_rows, quantized_matmul,
                                   quantized_matmul_t)

from .gguf_fixtures import gguf, requires_smollm2, smollm2_path

T = gguf.GGMLQuantizationType
LEGACY = [T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1]          # 32-value blocks
K_QUANTS = [T.Q6_K, T.Q4_K, T.Q5_K, T.Q2_K, T.Q3_K]        # 256-value super-blocks
FLOATS = [T.F32, T.F16, T.BF16]
ALL = LEGACY + K_QUANTS + FLOATS

# byte offsets of the float16 scales in one block of the types gguf cannot quantize
_SCALES_AT = {T.Q2_K: (80, 82), T.Q3_K: (108,), T.Q4_K: (0, 2), T.Q5_K: (0, 2), T.Q6_K: (208,)}


def weight(qtype, m, k, seed=0):
    """(blocks, float32 reference values) of an (m, k) weight of ``qtype``: normal weights
    quantized by gguf where it can, else random bytes with small finite float16 scales."""
    rng = np.random.default_rng(seed)
    if qtype in _SCALES_AT:
        block, nbytes = gguf.GGML_QUANT_SIZES[qtype]
        raw = rng.integers(0, 256, (m, k // block, nbytes), dtype=np.uint8)
        for at in _SCALES_AT[qtype]:
            f16 = (rng.standard_normal((m, k // block, 1)) * 0.05).astype(np.float16)
            raw[..., at:at + 2] = f16.view(np.uint8)
        blocks = raw.reshape(m, -1)
    else:
        blocks = gguf.quants.quantize(rng.standard_normal((m, k)).astype(np.float32), qtype)
    return blocks, gguf.quants.dequantize(blocks, qtype).reshape(m, k)


def check_product(y, x, w, rtol=1e-5):
    """y == x @ w.T up to float32 accumulation: each entry within rtol of sum(|x| |w|)."""
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    ref = x64 @ w64.T
    scale = np.abs(x64) @ np.abs(w64).T + 1e-30
    assert y.dtype == np.float32 and y.shape == ref.shape
    err = np.max(np.abs(y - ref) / scale) if y.size else 0.0
    assert err < rtol, f"max error {err:.2e} relative to sum(|x||w|)"


def same_bits(a, b):
    """Equal float32 arrays, bit for bit (any NaN matches any NaN)."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    nan = np.isnan(a) & np.isnan(b)
    return a.shape == b.shape and bool(np.all((a.view(np.uint32) == b.view(np.uint32)) | nan))


def test_types_and_block_sizes_match_gguf():
    assert {t.name for t in MATMUL_TYPES} == {t.name for t in ALL}
    for t in MATMUL_TYPES:
        assert BLOCK_SIZES[t] == gguf.GGML_QUANT_SIZES[T[t.name]]


@pytest.mark.parametrize("qtype", ALL, ids=lambda t: t.name)
def test_dequantize_rows_bit_exact(qtype):
    m, k = 21, 512
    blocks, ref = weight(qtype, m, k)
    assert same_bits(dequantize_rows(blocks, qtype, m, k), ref)
    part = np.empty((7, k), np.float32)
    assert dequantize_rows(blocks, qtype, m, k, 5, 12, out=part) is part
    assert same_bits(part, ref[5:12])


@pytest.mark.parametrize("qtype", ALL, ids=lambda t: t.name)
@pytest.mark.parametrize("k", [576, 1536])
@pytest.mark.parametrize("n", [1, 3, 64])
def test_matmul_matches_reference(qtype, k, n):
    m = 37                       # odd: not a multiple of any thread count or tile size
    x = np.random.default_rng(n).standard_normal((n, k)).astype(np.float32)
    if k % gguf.GGML_QUANT_SIZES[qtype][0]:     # 576 = 2.25 super-blocks: no k-quant rows
        with pytest.raises(ShapeError, match="in_features=576 is not a multiple of 256"):
            quantized_matmul(x, np.zeros(m * 1000, np.uint8), qtype, m, k)
        return
    blocks, w = weight(qtype, m, k, seed=k + n)
    check_product(quantized_matmul(x, blocks, qtype, m, k), x, w)


@pytest.mark.parametrize("qtype", [T.Q4_1, T.Q6_K, T.F16], ids=lambda t: t.name)
def test_prefill_tiles_and_batch_sizes(qtype, monkeypatch):
    # force several tiles (16 rows each, the last one partial) and both paths around the switch
    monkeypatch.setattr(qm, "TILE_BYTES", 1)
    m, k = 53, 512
    blocks, w = weight(qtype, m, k)
    rng = np.random.default_rng(1)
    for n in (qm.SMALL_BATCH - 1, qm.SMALL_BATCH, qm.SMALL_BATCH + 1, 40):
        x = rng.standard_normal((n, k)).astype(np.float32)
        check_product(quantized_matmul(x, blocks, qtype, m, k), x, w)


@pytest.mark.parametrize("qtype", [T.Q8_0, T.Q5_1, T.Q4_K, T.F32], ids=lambda t: t.name)
def test_transposed_product(qtype, monkeypatch):
    # g @ W (the input gradient): tile by tile, accumulated over several tiles
    monkeypatch.setattr(qm, "TILE_BYTES", 1)
    m, k = 45, 256
    blocks, w = weight(qtype, m, k)
    g = np.random.default_rng(6).standard_normal((2, 3, m)).astype(np.float32)
    out = quantized_matmul_t(g, blocks, qtype, m, k)
    assert out.shape == (2, 3, k)
    check_product(out.reshape(6, k), g.reshape(6, m), np.ascontiguousarray(w.T))
    with pytest.raises(ShapeError, match=r"g of shape \(2, 3, 44\)"):
        quantized_matmul_t(g[..., :44], blocks, qtype, m, k)


@pytest.mark.skipif(numba.get_num_threads() < 2, reason="one numba thread: no parallel path")
@pytest.mark.parametrize("qtype", [T.Q4_1, T.Q8_0, T.Q6_K, T.Q3_K], ids=lambda t: t.name)
def test_parallel_kernels(qtype, monkeypatch):
    monkeypatch.setattr(qm, "PARALLEL_MIN_WEIGHTS", 0)
    m, k = 41, 512               # 41 rows over the threads: chunks of unequal length
    blocks, w = weight(qtype, m, k)
    x = np.random.default_rng(2).standard_normal((5, k)).astype(np.float32)
    check_product(quantized_matmul(x, blocks, qtype, m, k), x, w)
    check_product(quantized_matmul(np.tile(x, (4, 1)), blocks, qtype, m, k), np.tile(x, (4, 1)), w)
    assert same_bits(dequantize_rows(blocks, qtype, m, k, 3, 40), w[3:40])


def test_f16_every_bit_pattern():
    # zeros, subnormals, normals, infinities and NaNs of both signs, as NumPy converts them
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    ref = bits.view(np.float16).astype(np.float32).reshape(256, 256)
    assert same_bits(dequantize_rows(bits.view(np.uint8), T.F16, 256, 256), ref)
    ref = (bits.astype(np.uint32) << 16).view(np.float32).reshape(256, 256)
    assert same_bits(dequantize_rows(bits.view(np.uint8), T.BF16, 256, 256), ref)


def test_input_shapes_and_dtypes():
    m, k = 9, 64
    blocks, w = weight(T.Q4_0, m, k)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, k))
    y = quantized_matmul(x, blocks, GGMLType.Q4_0, m, k)      # float64, 3-d
    assert y.shape == (2, 3, m)
    check_product(y.reshape(6, m), x.reshape(6, k).astype(np.float32), w)
    v = quantized_matmul(x[0, 0], blocks, int(T.Q4_0), m, k)    # 1-d, qtype as an int
    assert v.shape == (m,)
    np.testing.assert_allclose(v, y[0, 0], rtol=1e-6, atol=1e-6)
    wide = rng.standard_normal((4, 2 * k)).astype(np.float32)
    check_product(quantized_matmul(wide[:, ::2], blocks, T.Q4_0, m, k), wide[:, ::2], w)
    flat = np.ascontiguousarray(blocks).reshape(-1)          # any contiguous bytes will do
    check_product(quantized_matmul(wide[:, :k], flat, T.Q4_0, m, k), wide[:, :k], w)


def test_empty_shapes():
    blocks, _ = weight(T.Q8_0, 4, 64)
    assert quantized_matmul(np.zeros((0, 64), np.float32), blocks, T.Q8_0, 4, 64).shape == (0, 4)
    y = quantized_matmul(np.zeros((2, 64), np.float32), np.zeros(0, np.uint8), T.Q8_0, 0, 64)
    assert y.shape == (2, 0)


def test_memory_mapped_weight_is_read_in_place(tmp_path):
    m, k = 33, 256
    blocks, w = weight(T.Q4_K, m, k)
    path = tmp_path / "w.bin"
    blocks.tofile(path)
    mapped = np.memmap(path, dtype=np.uint8, mode="r")
    x = np.random.default_rng(4).standard_normal((2, k)).astype(np.float32)
    check_product(quantized_matmul(x, mapped, T.Q4_K, m, k), x, w)
    raw = qm._as_blocks(mapped, int(T.Q4_K), m, k)
    assert np.shares_memory(raw, mapped)


def test_errors_say_what_is_wrong():
    blocks, _ = weight(T.Q4_1, 8, 64)
    x = np.ones((1, 64), np.float32)
    with pytest.raises(UnsupportedQuantTypeError, match="IQ2_XXS.*supported: F32"):
        quantized_matmul(x, blocks, T.IQ2_XXS, 8, 64)
    with pytest.raises(UnsupportedQuantTypeError, match="unknown type 99"):
        quantized_matmul(x, blocks, 99, 8, 64)
    with pytest.raises(ShapeError, match=r"takes 320 bytes \(40 per row\), got 160"):
        quantized_matmul(x, blocks[:4], T.Q4_1, 8, 64)
    with pytest.raises(ShapeError, match=r"x of shape \(1, 32\).*expected x of shape \(N, 64\)"):
        quantized_matmul(np.ones((1, 32), np.float32), blocks, T.Q4_1, 8, 64)
    with pytest.raises(ShapeError, match="rows 4:9 are out of range"):
        dequantize_rows(blocks, T.Q4_1, 8, 64, 4, 9)


@requires_smollm2
def test_smollm2_tensors():
    """Real Q4_1 and Q8_0 tensors of SmolLM2-135M, multiplied straight from the mapped file."""
    reader = gguf.GGUFReader(smollm2_path())
    tensors = {t.name: t for t in reader.tensors}
    rng = np.random.default_rng(5)
    for name in ("blk.0.attn_k.weight", "blk.0.ffn_down.weight", "token_embd.weight"):
        t = tensors[name]
        k, m = (int(s) for s in t.shape)          # GGUF lists the innermost dimension first
        rows = slice(0, 3000)                     # the embedding's first rows are enough
        data = t.data[rows]
        m = data.shape[0]
        w = gguf.quants.dequantize(data, t.tensor_type).reshape(m, k)
        for n in (1, 12):
            x = rng.standard_normal((n, k)).astype(np.float32)
            check_product(quantized_matmul(x, data, t.tensor_type, m, k), x, w)
