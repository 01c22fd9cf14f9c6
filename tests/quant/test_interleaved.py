"""Row-interleaved GGML weights: repacking is lossless (dequantization bit-exact with gguf),
the float32 products equal dequantize-then-matmul, and the int8 products compute llama.cpp's
block formula on llama.cpp's quantized activations."""

import numpy as np
import pytest

from gradient.errors import ShapeError
from gradient.quant.ggml import BLOCK_SIZES, GGMLType, UnsupportedQuantTypeError
from gradient.quant.interleaved import (INTERLEAVED_TYPES, LANES, InterleavedWeight,
                                        interleaved_matmul, interleaved_matmul_t,
                                        quantize_activations)
from gradient.quant.matmul import SMALL_BATCH

from .gguf_fixtures import gguf

T = gguf.GGMLQuantizationType
# byte offsets of the float16 super-block scales of the k-quants (random bytes elsewhere)
_K_SCALES = {GGMLType.Q2_K: (80, 82), GGMLType.Q3_K: (108,), GGMLType.Q4_K: (0, 2),
             GGMLType.Q5_K: (0, 2), GGMLType.Q6_K: (208,)}


def random_blocks(qtype, m, k, seed=0):
    """GGML bytes of an (m, k) weight: quantized from random floats for the 32-value types
    (gguf's quantizer), random bytes with sane float16 scales for the k-quants."""
    rng = np.random.default_rng(seed)
    if qtype not in _K_SCALES:
        w = rng.standard_normal((m, k)).astype(np.float32)
        w[0, :32] = 0                                   # a zero block
        return np.ascontiguousarray(gguf.quants.quantize(w, T(int(qtype)))).reshape(m, -1)
    block, nbytes = BLOCK_SIZES[qtype]
    raw = rng.integers(0, 256, (m, k // block, nbytes), dtype=np.uint8)
    for p in _K_SCALES[qtype]:
        scales = rng.uniform(-0.01, 0.01, (m, k // block)).astype(np.float16)
        raw[:, :, p:p + 2] = scales[..., None].view(np.uint8)
    return raw.reshape(m, -1)


def reference(blocks, qtype, m, k):
    return gguf.quants.dequantize(blocks, T(int(qtype))).reshape(m, k).astype(np.float32)


@pytest.mark.parametrize("qtype", INTERLEAVED_TYPES, ids=lambda t: t.name)
def test_repacking_is_lossless(qtype):
    m, k = 70, 512                      # 70 rows: whole groups and a padded one
    blocks = random_blocks(qtype, m, k)
    w = InterleavedWeight.from_blocks(blocks, qtype, m, k)
    ref = reference(blocks, qtype, m, k)
    assert w.codes.shape[0] == -(-m // LANES) and w.codes.shape[-2:] == (LANES, 4)
    np.testing.assert_array_equal(w.dequantize(), ref)
    np.testing.assert_array_equal(w.dequantize(33, 69), ref[33:69])
    ids = np.array([[69, 0], [31, 32]])
    np.testing.assert_array_equal(w.rows(ids), ref[ids])


#: Bytes per 32 weights held, by type (codes, scales and minimums; the k-quants keep ggml's
#: super-block scale and each block's integers): what the module docstring promises.
# per 32 weights; Q4_0, Q4_1, Q8_0 and Q6_K exactly their GGML blocks' bytes
HELD_BYTES = {GGMLType.Q4_0: 18, GGMLType.Q4_1: 20, GGMLType.Q4_K: 18.5, GGMLType.Q8_0: 34,
              GGMLType.Q5_0: 34, GGMLType.Q5_1: 36, GGMLType.Q5_K: 34.5, GGMLType.Q2_K: 36.5,
              GGMLType.Q3_K: 34.25, GGMLType.Q6_K: 26.25}


@pytest.mark.parametrize("qtype", INTERLEAVED_TYPES, ids=lambda t: t.name)
def test_bytes_held_per_weight(qtype):
    w = InterleavedWeight.from_blocks(random_blocks(qtype, 64, 512), qtype, 64, 512)
    assert w.nbytes == HELD_BYTES[qtype] * 64 * 512 // 32


@pytest.mark.parametrize("qtype", INTERLEAVED_TYPES, ids=lambda t: t.name)
@pytest.mark.parametrize("n", [1, 3, SMALL_BATCH + 3])
def test_float32_products_are_exact_weight_products(qtype, n):
    m, k = 70, 512
    blocks = random_blocks(qtype, m, k, seed=n)
    w = InterleavedWeight.from_blocks(blocks, qtype, m, k)
    ref = reference(blocks, qtype, m, k).astype(np.float64)
    x = np.random.default_rng(1).standard_normal((n, k)).astype(np.float32)
    y = interleaved_matmul(x, w, "float32")
    expected = x @ ref.T
    assert y.shape == (n, m) and y.dtype == np.float32
    assert np.abs(y - expected).max() <= 1e-5 * np.abs(expected).max()
    g = np.random.default_rng(2).standard_normal((n, m)).astype(np.float32)
    expected_t = g @ ref
    assert np.abs(interleaved_matmul_t(g, w) - expected_t).max() <= 1e-5 * np.abs(expected_t).max()


@pytest.mark.parametrize("qtype", [GGMLType.Q4_1, GGMLType.Q8_0], ids=lambda t: t.name)
def test_a_first_runs_float32_products_give_the_kernels_bits(qtype, monkeypatch):
    """While the parallel float32 product compiles in a child process (a first run of the
    commands), its chunks run a row of x at a time on Python threads: the bits of the
    kernel's tiles of 4, 2 and 1 rows."""
    from gradient.quant import interleaved
    m, k, n = 150, 512, 7
    w = InterleavedWeight.from_blocks(random_blocks(qtype, m, k, seed=3), qtype, m, k)
    x = np.random.default_rng(4).standard_normal((n, k)).astype(np.float32)
    kernel, head, tail = interleaved._product_call(w, "float32")
    compiled = np.empty((n, m), np.float32)
    interleaved._float_product(x, *head, compiled, *tail)
    monkeypatch.setattr(interleaved, "compiled_already", lambda kernel, args: False)
    first_run = np.full((n, m), np.nan, np.float32)
    kernel(x, *head, first_run, *tail)
    np.testing.assert_array_equal(first_run, compiled)


def emulate_int8(x, w: InterleavedWeight):
    """llama.cpp's quantized dot product in float64 from the same quantized activations:
    per block ``(scale * x_scale) * sum(q_w * q_x) + minimum * x_sum``."""
    xq, xd, xs, xs16, _, _ = quantize_activations(x)
    ref = w.dequantize()
    block = w.block
    scale = np.empty((w.out_features, w.in_features // block))
    minimum = np.zeros_like(scale)
    codes = np.empty((w.out_features, w.in_features), np.float64)
    block_scale, block_minimum = w.block_factors()
    for b in range(w.in_features // block):
        cols = slice(b * block, (b + 1) * block)
        g, lane = np.divmod(np.arange(w.out_features), LANES)
        scale[:, b] = block_scale[g, b, lane]
        if block_minimum is not None:
            minimum[:, b] = block_minimum[g, b, lane]
        # the integer codes, recovered from the exact values: (value - minimum) / scale
        with np.errstate(invalid="ignore", divide="ignore"):
            c = (ref[:, cols] - minimum[:, b:b + 1]) / scale[:, b:b + 1]
        codes[:, cols] = np.where(scale[:, b:b + 1] == 0, 0, np.rint(c))
    y = np.zeros((x.shape[0], w.out_features))
    for b in range(w.in_features // block):
        cols = slice(b * block, (b + 1) * block)
        isum = xq[:, cols].astype(np.float64) @ codes[:, cols].T
        sx = xd[:, (b * block) // 32][:, None]
        sm = (xs[:, b] if block == 32 else xs16[:, b])[:, None]
        y += (scale[:, b] * sx) * isum + minimum[:, b] * sm
    return y


@pytest.mark.parametrize("qtype", INTERLEAVED_TYPES, ids=lambda t: t.name)
@pytest.mark.parametrize("n", [1, 15])      # 15: tiles of 8, 4, 2 and 1 rows
def test_int8_products_follow_llama_cpp_formula(qtype, n):
    m, k = 70, 512
    blocks = random_blocks(qtype, m, k, seed=3)
    w = InterleavedWeight.from_blocks(blocks, qtype, m, k)
    x = np.random.default_rng(4).standard_normal((n, k)).astype(np.float32)
    y = interleaved_matmul(x, w, "int8")
    expected = emulate_int8(x, w)
    assert np.abs(y - expected).max() <= 1e-5 * np.abs(expected).max()
    # and the exact product, up to the activations' 8 bits
    exact = x.astype(np.float64) @ w.dequantize().T.astype(np.float64)
    err = np.abs(y - exact).max() / np.abs(exact).max()
    assert 1e-5 < err < 2e-2


# (bits, group_size, zero points): weights quantized in groups (weight-only int4/int8, GPTQ)
GROUPED = [(4, 32, True), (4, 64, True), (4, 128, False), (8, 64, False)]


def grouped_weight(bits, group, zp, m=70, k=512, seed=0):
    """A PackedWeight of random weights and its InterleavedWeight.from_groups."""
    from gradient.quant.weight_only import quantize_weight
    w = np.random.default_rng(seed).standard_normal((m, k)).astype(np.float32)
    w[0, :group] = 0                                    # a zero group
    w[1, :group] = np.abs(w[1, :group])                 # no negative weight: zero point 0
    p = quantize_weight(w, bits, group, zp)
    return p, InterleavedWeight.from_groups(p.qweight, p.scales, p.zeros, bits, k)


@pytest.mark.parametrize("bits,group,zp", GROUPED, ids=str)
@pytest.mark.parametrize("n", [1, 15])
def test_grouped_weights_multiply_as_the_ggml_types(bits, group, zp, n):
    p, w = grouped_weight(bits, group, zp, seed=n)
    ref = p.dequantize()                                # (q - z) * s, in float32
    np.testing.assert_array_equal(w.dequantize(), ref)  # -(s * z) + s * q: the same bits
    np.testing.assert_array_equal(w.rows(np.array([69, 0, 17])), ref[[69, 0, 17]])
    assert w.has_minimum == zp and w.qtype == (GGMLType.Q8_0 if bits == 8 else
                                               GGMLType.Q4_1 if zp else GGMLType.Q4_0)
    x = np.random.default_rng(1).standard_normal((n, 512)).astype(np.float32)
    expected = x @ ref.T.astype(np.float64)
    y = interleaved_matmul(x, w, "float32")
    assert np.abs(y - expected).max() <= 1e-5 * np.abs(expected).max()
    y8 = interleaved_matmul(x, w, "int8")
    formula = emulate_int8(x, w)
    assert np.abs(y8 - formula).max() <= 1e-5 * np.abs(formula).max()
    # row_blocks undoes the repacking: every block's codes, its group's scale and zero point
    codes, scales, zeros = w.row_blocks()
    per = group // 32
    np.testing.assert_array_equal(codes.reshape(70, -1).view(np.uint8),
                                  p.qweight.view(np.uint8) ^ np.uint8(128 if bits == 8 else 0))
    np.testing.assert_array_equal(scales, np.repeat(p.scales, per, axis=1))
    if zp:
        np.testing.assert_array_equal(zeros, np.repeat(p.zeros, per, axis=1))
    else:
        assert zeros is None


def test_grouped_weight_errors():
    p, _ = grouped_weight(4, 64, True, m=4, k=128)
    with pytest.raises(ValueError, match="symmetric 8 bits"):
        InterleavedWeight.from_groups(p.qweight, p.scales, p.zeros, 3, 128)
    with pytest.raises(ShapeError, match="whole 32-value blocks"):
        InterleavedWeight.from_groups(p.qweight, p.scales[:, :1].repeat(3, axis=1), p.zeros,
                                      4, 128)
    with pytest.raises(ValueError, match="zero points 0..16"):
        InterleavedWeight.from_groups(p.qweight, p.scales, p.zeros + 17, 4, 128)
    with pytest.raises(UnsupportedQuantTypeError, match="super-block"):
        InterleavedWeight.from_blocks(random_blocks(GGMLType.Q4_K, 16, 256), "Q4_K", 16,
                                      256).row_blocks()


@pytest.mark.parametrize("qtype", [GGMLType.Q8_0, GGMLType.Q4_1, GGMLType.Q6_K],
                         ids=lambda t: t.name)
@pytest.mark.parametrize("n", [1, 15])
def test_per_token_activations_are_smoothquants(qtype, n):
    """``int8_per_token``: each row of x as int8 with one scale, max|x_row| / 127, and the
    integer products scaled once: ``d_row * (q_row @ W.T)``."""
    m, k = 70, 512
    w = InterleavedWeight.from_blocks(random_blocks(qtype, m, k, seed=5), qtype, m, k)
    x = np.random.default_rng(6).standard_normal((n, k)).astype(np.float32)
    x[0, 100] = 40.0                                 # an outlier sets its row's scale
    d = np.abs(x).max(axis=1, keepdims=True) / np.float32(127)
    q = np.rint(x * (np.float32(127) / np.abs(x).max(axis=1, keepdims=True)))
    expected = d.astype(np.float64) * (q @ w.dequantize().T.astype(np.float64))
    y = interleaved_matmul(x, w, "int8_per_token")
    assert np.abs(y - expected).max() <= 1e-5 * np.abs(expected).max()
    # coarser than llama.cpp's scale per 32 values where a row has an outlier
    exact = x.astype(np.float64) @ w.dequantize().T.astype(np.float64)
    per_block = interleaved_matmul(x, w, "int8")
    assert np.abs(y - exact)[0].max() > np.abs(per_block - exact)[0].max()
    np.testing.assert_array_equal(interleaved_matmul(x[-1:], w, "int8_per_token"), y[-1:])


def test_activations_are_quantized_as_llama_cpp_q8_1():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 96)).astype(np.float32)
    x[0, :32] = 0                                       # a zero block: scale 0, codes 0
    x[1, 32:64] *= 1e-6                                 # tiny: a subnormal float16 scale
    xq, xd, xs, xs16, qsum, qsum16 = quantize_activations(x)
    blocks = x.reshape(2, 3, 32)
    amax = np.abs(blocks).max(-1)
    with np.errstate(divide="ignore"):
        inv = np.where(amax > 0, np.float32(127) / amax, 0).astype(np.float32)
    q = np.rint(blocks * inv[..., None]).astype(np.int8)
    np.testing.assert_array_equal(xq.reshape(2, 3, 32), q)
    d = (amax / np.float32(127)).astype(np.float32)
    np.testing.assert_array_equal(xd, d.astype(np.float16).astype(np.float32))
    sums = q.astype(np.int32).sum(-1)
    np.testing.assert_array_equal(qsum, sums)
    np.testing.assert_array_equal(qsum16, q.reshape(2, 6, 16).astype(np.int32).sum(-1))
    np.testing.assert_array_equal(xs, (sums * d).astype(np.float32).astype(np.float16)
                                  .astype(np.float32))
    halves = q.reshape(2, 6, 16).astype(np.int32).sum(-1) * np.repeat(d, 2, axis=1)
    np.testing.assert_allclose(xs16, halves, rtol=1e-6)


def test_errors():
    blocks = random_blocks(GGMLType.Q8_0, 4, 64)
    with pytest.raises(UnsupportedQuantTypeError, match="F16 is not repacked"):
        InterleavedWeight.from_blocks(np.zeros((4, 128), np.uint8), GGMLType.F16, 4, 64)
    w = InterleavedWeight.from_blocks(blocks, "Q8_0", 4, 64)
    with pytest.raises(ShapeError, match=r"x of shape \(1, 32\) does not match"):
        interleaved_matmul(np.ones((1, 32), np.float32), w)
    with pytest.raises(ValueError, match="activations must be one of"):
        interleaved_matmul(np.ones((1, 64), np.float32), w, "int4")
    with pytest.raises(ShapeError, match="out of range"):
        w.dequantize(2, 5)
    with pytest.raises(ShapeError, match="multiple of 32"):
        quantize_activations(np.ones((1, 48), np.float32))
