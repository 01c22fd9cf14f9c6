"""gradient.quant.ggml: GGML block formats dequantized bit for bit as gguf-py (ggml's reference).

Two kinds of input per type: blocks that ``gguf.quants.quantize`` makes from random floats (for
the types it can quantize), and random bytes with finite float16 scales, which reach every bit
pattern of the packed quants and scales (the k-quants' 6-bit scales in particular). Equality is
on the float32 bit patterns, so a different rounding order (a fused multiply-add, a float64
intermediate) fails as surely as a wrong bit position.
"""

import numpy as np
import pytest

from gradient.errors import FileFormatError
from gradient.quant import (BLOCK_SIZES, DEQUANTIZABLE, GGMLType, UnsupportedQuantTypeError,
                            dequantize, tensor_nbytes, type_name)

from .gguf_fixtures import gguf

T = gguf.GGMLQuantizationType
QUANTIZED = ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]
# byte ranges of the float16 scales (d, and m/dmin) inside one block
F16_SCALES = {"Q8_0": [0], "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2],
              "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208]}


def same_bits(a, b):
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def random_blocks(name, n_blocks, seed, scale_values=None):
    """Random bytes for ``n_blocks`` blocks of ``name``, with finite float16 scales."""
    rng = np.random.default_rng(seed)
    _, type_size = BLOCK_SIZES[GGMLType[name]]
    raw = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    for at in F16_SCALES[name]:
        values = (scale_values if scale_values is not None
                  else rng.standard_normal(n_blocks) * 10.0 ** rng.integers(-6, 2, n_blocks))
        raw[:, at:at + 2] = np.asarray(values, dtype=np.float16).reshape(-1, 1).view(np.uint8)
    return raw


def test_the_table_matches_ggml():
    for t in GGMLType:
        assert BLOCK_SIZES[t] == gguf.constants.GGML_QUANT_SIZES[T(int(t))], t.name
        assert T(int(t)).name == t.name
    assert [t.name for t in DEQUANTIZABLE] == ["F32", "F16", "BF16", *QUANTIZED]


@pytest.mark.parametrize("name", QUANTIZED)
def test_random_bytes_match_gguf_bit_for_bit(name):
    block, _ = BLOCK_SIZES[GGMLType[name]]
    raw = random_blocks(name, 512, seed=QUANTIZED.index(name))
    rows = raw.reshape(8, -1)                             # 8 rows of 64 blocks each
    expected = gguf.quants.dequantize(rows, T[name])
    ours = dequantize(rows, GGMLType[name], (8, 64 * block))
    assert ours.dtype == np.float32 and same_bits(ours, expected)
    assert np.isfinite(ours).all()


@pytest.mark.parametrize("name", ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"])
def test_quantized_floats_match_gguf_bit_for_bit(name):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((16, 256)) * rng.uniform(0.01, 5, (16, 1))).astype(np.float32)
    x[3] = 0                                              # an all-zero row: scale 0
    x[5, :32] = 1e-3                                      # a constant block
    q = gguf.quants.quantize(x, T[name])
    expected = gguf.quants.dequantize(q, T[name])
    ours = dequantize(q, GGMLType[name], x.shape)
    assert same_bits(ours, expected)
    assert np.abs(ours - x).max() < np.abs(x).max() / 6   # and it is a quantization of x


def test_special_scales_are_carried_exactly():
    """Subnormal, zero, negative-zero, infinite and NaN float16 scales, as NumPy converts them."""
    specials = np.array([0.0, -0.0, 6e-8, -6e-8, 65504, -65504, np.inf, -np.inf, np.nan, 1.0],
                        dtype=np.float16)
    for name in QUANTIZED:
        raw = random_blocks(name, len(specials), seed=1, scale_values=specials)
        with np.errstate(invalid="ignore", over="ignore"):
            expected = gguf.quants.dequantize(raw, T[name])
        block, _ = BLOCK_SIZES[GGMLType[name]]
        assert same_bits(dequantize(raw, GGMLType[name], (len(specials) * block,)),
                         expected.reshape(-1)), name


@pytest.mark.parametrize("name", ["F32", "F16", "BF16"])
def test_float_types(name):
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.standard_normal(1000).astype(np.float32) * 100,
                        np.array([0, -0.0, np.inf, -np.inf, np.nan, 1e-40, 3e38], np.float32)])
    with np.errstate(over="ignore"):
        stored = gguf.quants.quantize(x, T[name])
    expected = gguf.quants.dequantize(stored, T[name])
    ours = dequantize(np.ascontiguousarray(stored).view(np.uint8), GGMLType[name], x.shape)
    assert same_bits(ours, expected)


def test_shapes_empty_and_wrong_sizes():
    raw = random_blocks("Q4_K", 6, seed=2)
    assert dequantize(raw, GGMLType.Q4_K, (2, 3, 256)).shape == (2, 3, 256)
    assert dequantize(np.zeros(0, np.uint8), GGMLType.Q4_K, (0, 256)).shape == (0, 256)
    with pytest.raises(ValueError, match=r"w: Q4_K values of shape \(2, 256\) take 288 bytes, got 864"):
        dequantize(raw, GGMLType.Q4_K, (2, 256), name="w")
    with pytest.raises(ValueError, match="not a whole number of 256-value blocks"):
        dequantize(raw, GGMLType.Q4_K, (6, 100))
    assert tensor_nbytes(GGMLType.Q4_0, 4096) == 4096 // 32 * 18
    assert type_name(12) == "Q4_K" and type_name(99) == "unknown type 99"


@pytest.mark.parametrize("type_id", [int(GGMLType.Q8_K), int(GGMLType.IQ2_XXS), 99])
def test_unsupported_types_name_the_tensor_and_the_type_id(type_id):
    with pytest.raises(UnsupportedQuantTypeError, match=rf"blk\.0\.ffn_up\.weight: .*type id {type_id}") as info:
        dequantize(np.zeros(292, np.uint8), type_id, (256,), name="blk.0.ffn_up.weight")
    assert isinstance(info.value, FileFormatError) and isinstance(info.value, NotImplementedError)
    assert "Q4_K" in str(info.value)   # says what is supported
