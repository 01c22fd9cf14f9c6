"""float16 in compiled kernels (gradient.backends.cpu_half): every float16 value widens to
float32 exactly, float32 narrows to float16 as NumPy rounds it; and a float16 KV cache read by
the attention kernels gives, bit for bit, what the same cache widened to float32 gives."""

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


def test_every_float16_widens_exactly():
    bits = np.arange(1 << 16, dtype=np.uint16)
    ours = np.empty(bits.size, np.float32)
    _widen_all(bits, ours)
    numpy = bits.view(np.float16).astype(np.float32)
    nan = np.isnan(numpy)
    assert np.array_equal(np.isnan(ours), nan)
    np.testing.assert_array_equal(ours[~nan].view(np.uint32), numpy[~nan].view(np.uint32))


def test_float32_narrows_as_numpy_rounds():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(100_000).astype(np.float32) * s
                        for s in (1e-7, 1e-5, 1e-2, 1, 300, 6e4)])
    edges = np.array([65504, 65519.99, 65520, 1e9, np.inf, -np.inf, np.nan, 0.0, -0.0,
                      2.98e-8, 2.99e-8, 5.96e-8, 1 + 2 ** -11, 1 + 3 * 2 ** -11], np.float32)
    x = np.concatenate([x, edges])
    ours = np.empty(x.size, np.float16)
    _narrow_all(x, as_bits(ours))
    with np.errstate(over="ignore"):
        numpy = x.astype(np.float16)
    nan = np.isnan(numpy)
    assert np.array_equal(np.isnan(ours), nan)
    np.testing.assert_array_equal(ours[~nan].view(np.uint16), numpy[~nan].view(np.uint16))


def _cache(rng, batch, kv_heads, keys, dim=16):
    """Buffers of a float16 cache, longer than the part filled, and that part."""
    k = (rng.standard_normal((batch, kv_heads, keys + 7, dim)) * 3).astype(np.float16)
    v = rng.standard_normal((batch, kv_heads, keys + 7, dim)).astype(np.float16)
    return k, v, k[:, :, :keys], v[:, :, :keys]


@pytest.mark.parametrize("batch,heads,kv_heads,rows,keys", [
    (1, 9, 3, 1, 700), (2, 4, 2, 1, 65), (1, 6, 2, 40, 40), (2, 9, 3, 5, 130), (1, 4, 4, 1, 1)])
def test_a_float16_cache_gives_the_bits_of_the_cache_widened(batch, heads, kv_heads, rows, keys):
    rng = np.random.default_rng(keys)
    q = rng.standard_normal((batch, heads, rows, 16)).astype(np.float32)
    k_buf, v_buf, k, v = _cache(rng, batch, kv_heads, keys)
    wide_k, wide_v = k.astype(np.float32), v.astype(np.float32)
    expected = cpu_attention.decode_attention(q, wide_k, wide_v, 0.3)
    np.testing.assert_array_equal(cpu_attention.decode_attention(q, k, v, 0.3), expected)
    for threads in (1, 2, 3):
        np.testing.assert_array_equal(cpu_attention.attend(q, k, v, 0.3, n_threads=threads),
                                      expected)
    twin = np.empty((batch, rows, heads, 16), np.float32)      # what a first run computes
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


def test_the_compiled_cache_write_rounds_as_numpy():
    rng = np.random.default_rng(2)
    keys = np.zeros((3, 1, 2, 10, 8), np.float16)
    values = np.zeros_like(keys)
    key = rng.standard_normal((1, 2, 4, 8)).astype(np.float32) * 100
    value = rng.standard_normal((1, 2, 4, 8)).astype(np.float32) * 1e-5
    k_view, v_view = cpu_lowered.kv_write(as_bits(keys), as_bits(values), 3, 1, key, value)
    np.testing.assert_array_equal(keys[1, :, :, 3:7], key.astype(np.float16))
    np.testing.assert_array_equal(values[1, :, :, 3:7], value.astype(np.float16))
    assert k_view.shape == (1, 2, 7, 8) and not keys[[0, 2]].any()
