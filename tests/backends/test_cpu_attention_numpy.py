"""Inference attention's NumPy twin (what a first run computes while the kernel compiles)
gives the kernel's bits: decode steps and prompts, grouped heads, keys past a multiple of
the lane count and short of it, a cache buffer longer than what is filled, large scores."""

import numpy as np
import pytest

from gradient.backends import cpu_attention, cpu_attention_numpy


@pytest.mark.parametrize("heads,kv_heads,rows,keys", [
    (4, 4, 1, 1), (9, 3, 1, 200), (12, 12, 1, 64), (6, 2, 7, 7), (6, 2, 5, 130),
    (9, 3, 70, 70), (2, 1, 3, 300)])
def test_the_twin_gives_the_kernels_bits(heads, kv_heads, rows, keys):
    rng = np.random.default_rng(rows * keys)
    B, D, max_len = 2, 16, keys + 9
    q = rng.standard_normal((B, heads, rows, D)).astype(np.float32)
    cache_k = rng.standard_normal((B, kv_heads, max_len, D)).astype(np.float32) * 3
    cache_v = rng.standard_normal((B, kv_heads, max_len, D)).astype(np.float32)
    k, v = cache_k[:, :, :keys], cache_v[:, :, :keys]
    kernel = cpu_attention.attend(q, k, v, 0.7, n_threads=1)    # the serial kernel
    ours = np.full((B, rows, heads, D), np.nan, np.float32)
    cpu_attention_numpy.attend(q, cache_k, cache_v, keys, np.float32(0.7), ours)
    np.testing.assert_array_equal(ours.transpose(0, 2, 1, 3), kernel)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("D", [64, 80])
@pytest.mark.parametrize("rows", [1, 20])
def test_whole_tiles_and_wide_heads_give_the_twins_bits(dtype, D, rows):
    # head_dim 64 and 80: the kernel's register sums, 64 values of head_dim at a time (and the
    # rest one by one); 150 keys: two whole tiles of 64, transposed in blocks of 16, and a part
    rng = np.random.default_rng(D + rows)
    B, heads, kv_heads, keys = 1, 6, 2, 150
    q = rng.standard_normal((B, heads, rows, D)).astype(np.float32)
    cache_k = (rng.standard_normal((B, kv_heads, keys + 5, D)) * 3).astype(dtype)
    cache_v = rng.standard_normal((B, kv_heads, keys + 5, D)).astype(dtype)
    k, v = cache_k[:, :, :keys], cache_v[:, :, :keys]
    kernel = cpu_attention.attend(q, k, v, 0.3, n_threads=1)
    ours = np.full((B, rows, heads, D), np.nan, np.float32)
    cpu_attention_numpy.attend(q, cache_k, cache_v, keys, np.float32(0.3), ours)
    np.testing.assert_array_equal(ours.transpose(0, 2, 1, 3), kernel)


def test_the_twins_running_sums_take_rows_in_parts(monkeypatch):
    monkeypatch.setattr(cpu_attention_numpy, "_BUDGET", 1000)     # a few rows at a time
    rng = np.random.default_rng(0)
    q = rng.standard_normal((1, 4, 40, 8)).astype(np.float32)
    k = rng.standard_normal((1, 2, 40, 8)).astype(np.float32)
    ours = np.empty((1, 40, 4, 8), np.float32)
    cpu_attention_numpy.attend(q, k, k, 40, np.float32(0.5), ours)
    np.testing.assert_array_equal(ours.transpose(0, 2, 1, 3),
                                  cpu_attention.attend(q, k, k, 0.5, n_threads=1))
