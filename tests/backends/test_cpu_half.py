"""16-bit floats in compiled kernels (gradient.backends.cpu_half): every float16 and bfloat16
value widens to float32 exactly, float32 narrows to either as NumPy (ml_dtypes) rounds it; and
a float16 or bfloat16 KV cache read by the attention kernels gives, bit for bit, what the same
cache widened to float32 gives."""

import ml_dtypes
import numpy as np
import pytest

from gradient.backends import cpu_attention, cpu_attention_numpy, cpu_lowered
from gradient.backends.cpu_compile import compile_kernel
from gradient.backends.cpu_half import as_bits, narrow, widen


@compile_kernel
def _widen_all(bits, out):
    for i in range(bits.size):
        out[i] = widen(bits[i])


@compile_kernel
def _narrow_all(x, out):
    for i in range(x.size):
        out[i] = narrow(x[i], out)


HALVES = [np.float16, ml_dtypes.bfloat16]


@pytest.mark.parametrize("dtype", HALVES)
def test_every_16_bit_float_widens_exactly(dtype):
    values = np.arange(1 << 16, dtype=np.uint16).view(dtype)
    ours = np.empty(values.size, np.float32)
    _widen_all(as_bits(values), ours)
    numpy = values.astype(np.float32)
    nan = np.isnan(numpy)
    assert np.array_equal(np.isnan(ours), nan)
    np.testing.assert_array_equal(ours[~nan].view(np.uint32), numpy[~nan].view(np.uint32))


@pytest.mark.parametrize("dtype", HALVES)
def test_float32_narrows_as_numpy_rounds(dtype):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(100_000).astype(np.float32) * s
                        for s in (1e-40, 1e-7, 1e-5, 1e-2, 1, 300, 6e4, 5e37)])
    edges = np.array([65504, 65519.99, 65520, 1e9, np.inf, -np.inf, np.nan, -np.nan, 0.0, -0.0,
                      2.98e-8, 2.99e-8, 5.96e-8, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -8,
                      1 + 3 * 2 ** -8, 3.3895e38, 3.4028235e38, 1e-45], np.float32)
    # every float32 whose low 16 bits are a tie, or one off a tie (bfloat16's hard cases)
    ties = (rng.integers(0, 1 << 16, 4096, dtype=np.uint32) << 16)[:, None] + np.array(
        [0x7FFF, 0x8000, 0x8001], np.uint32)
    x = np.concatenate([x, edges, ties.ravel().view(np.float32)])
    ours = np.empty(x.size, dtype)
    _narrow_all(x, as_bits(ours))
    with np.errstate(over="ignore", invalid="ignore"):
        numpy = x.astype(dtype)
    nan = np.isnan(numpy)
    assert np.array_equal(np.isnan(ours), nan)
    np.testing.assert_array_equal(ours[~nan].view(np.uint16), numpy[~nan].view(np.uint16))
    np.testing.assert_array_equal(np.signbit(ours[nan]), np.signbit(x[nan]))


def _cache(rng, batch, kv_heads, keys, dim=16, dtype=np.float16):
    """Buffers of a 16-bit cache, longer than the part filled, and that part."""
    k = (rng.standard_normal((batch, kv_heads, keys + 7, dim)) * 3).astype(dtype)
    v = rng.standard_normal((batch, kv_heads, keys + 7, dim)).astype(dtype)
    return k, v, k[:, :, :keys], v[:, :, :keys]


@pytest.mark.parametrize("dtype", HALVES)
@pytest.mark.parametrize("batch,heads,kv_heads,rows,keys,dim", [
    (1, 9, 3, 1, 700, 16), (2, 4, 2, 1, 65, 16), (1, 6, 2, 40, 40, 16), (2, 9, 3, 5, 130, 16),
    (1, 4, 4, 1, 1, 16), (1, 6, 2, 1, 150, 64), (2, 4, 1, 3, 70, 64)])
def test_a_16_bit_cache_gives_the_bits_of_the_cache_widened(batch, heads, kv_heads, rows, keys,
                                                            dim, dtype):
    rng = np.random.default_rng(keys)
    q = rng.standard_normal((batch, heads, rows, dim)).astype(np.float32)
    k_buf, v_buf, k, v = _cache(rng, batch, kv_heads, keys, dim, dtype)
    wide_k, wide_v = k.astype(np.float32), v.astype(np.float32)
    expected = cpu_attention.decode_attention(q, wide_k, wide_v, 0.3)
    np.testing.assert_array_equal(cpu_attention.decode_attention(q, k, v, 0.3), expected)
    for threads in (1, 2, 3):
        np.testing.assert_array_equal(cpu_attention.attend(q, k, v, 0.3, n_threads=threads),
                                      expected)
    twin = np.empty((batch, rows, heads, dim), np.float32)     # what a first run computes
    cpu_attention_numpy.attend(q, k_buf, v_buf, keys, np.float32(0.3), twin)
    np.testing.assert_array_equal(twin.transpose(0, 2, 1, 3), expected)
    # inside a compiled step (the cache as its bits): a decode step's row, or a speculative
    # check's rows after the cache, in the layout decode_attention returns
    lowered = cpu_attention._lower_decode_attention(q, k, v, 0.3)
    compiled = lowered.fn(q, as_bits(k), as_bits(v), *lowered.args[3:])
    np.testing.assert_array_equal(compiled, expected)
    if rows == 1:
        assert lowered.fn is cpu_attention.decode_attention_compiled
    else:                   # what the step's next call (a permute) was recorded on
        assert compiled.strides == expected.strides
        lengths = np.array([keys] + [max(1, keys - 3)] * (batch - 1))
        np.testing.assert_array_equal(
            cpu_attention.ragged_decode_attention(q, k, v, lengths, 0.3),
            cpu_attention.ragged_decode_attention(q, wide_k, wide_v, lengths, 0.3))


def test_float64_queries_do_not_take_a_float16_cache():
    rng = np.random.default_rng(1)
    _, _, k, v = _cache(rng, 1, 2, 9)
    q = rng.standard_normal((1, 4, 1, 16))
    assert cpu_attention.decode_attention(q, k, v, 0.3) is None


@pytest.mark.parametrize("dtype", HALVES)
def test_the_compiled_cache_write_rounds_as_numpy(dtype):
    rng = np.random.default_rng(2)
    keys = np.zeros((3, 1, 2, 10, 8), dtype)
    values = np.zeros_like(keys)
    key = rng.standard_normal((1, 2, 4, 8)).astype(np.float32) * 100
    value = rng.standard_normal((1, 2, 4, 8)).astype(np.float32) * 1e-5
    k_view, v_view = cpu_lowered.kv_write(as_bits(keys), as_bits(values), 3, 1, key, value)
    np.testing.assert_array_equal(keys[1, :, :, 3:7], key.astype(dtype))
    np.testing.assert_array_equal(values[1, :, :, 3:7], value.astype(dtype))
    assert k_view.shape == (1, 2, 7, 8) and not keys[[0, 2]].any()


def _layout(a):
    """The strides of the axes longer than one (the others' do not matter)."""
    return [s for s, n in zip(a.strides, a.shape) if n > 1]


@pytest.mark.parametrize("dtype", HALVES)
@pytest.mark.parametrize("batch,rows,keys", [(1, 1, 150), (2, 1, 65), (1, 3, 70), (1, 40, 40)])
def test_16_bit_queries_give_the_float32_kernels_bits_rounded(batch, rows, keys, dtype):
    """A float16 or bfloat16 model's attention: queries and cache of its dtype, computed in
    float32 and rounded once, in decode_attention's layout (heads inside tokens)."""
    from gradient import kernels
    from gradient.backends import get_backend
    rng = np.random.default_rng(rows + keys)
    q = rng.standard_normal((batch, 6, rows, 64)).astype(dtype)
    _, _, k, v = _cache(rng, batch, 2, keys, 64, dtype)
    expected = cpu_attention.decode_attention(q.astype(np.float32), k, v, 0.125).astype(dtype)
    ours = cpu_attention.decode_attention(q, k, v, 0.125)
    assert ours.dtype == dtype and _layout(ours) == _layout(expected)
    np.testing.assert_array_equal(ours.view(np.uint16), expected.view(np.uint16))
    cpu = get_backend("cpu")
    prepared = kernels.prepare("decode_attention", cpu, q, k, v, 0.125)
    np.testing.assert_array_equal(prepared(q, k, v, 0.125).view(np.uint16),
                                  expected.view(np.uint16))
    if rows == 1:       # a server's batch: each row as that sequence decoded alone
        lengths = np.array([keys] + [max(1, keys - 5)] * (batch - 1))
        np.testing.assert_array_equal(
            cpu_attention.ragged_decode_attention(q, k, v, lengths, 0.125).view(np.uint16),
            cpu_attention.ragged_decode_attention(q.astype(np.float32), k, v, lengths,
                                                  0.125).astype(dtype).view(np.uint16))
