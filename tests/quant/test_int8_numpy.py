"""The NumPy int8 products (what a first run computes while the kernels compile) give the
compiled kernels' bits: activations quantized the same, every repacked type, one row and many,
zero and tiny blocks, weights of more rows than one multiplication takes."""

import numpy as np
import pytest

from gradient.quant import int8_numpy
from gradient.quant.interleaved import (INTERLEAVED_TYPES, InterleavedWeight, _int8_product,
                                        _product_call, quantize_activations)

from .test_interleaved import random_blocks


def activations(n, k, seed):
    x = np.random.default_rng(seed).standard_normal((n, k)).astype(np.float32)
    x[0, :32] = 0                             # a zero block: scale 0, codes 0
    x[-1, 32:64] *= 1e-6                      # tiny: subnormal float16 scales
    x[-1, 64:96] *= 3e4                       # large: float16 sums near their limit
    return x


@pytest.mark.parametrize("n", [1, 5])
def test_activations_are_quantized_as_the_kernel_does(n):
    x = activations(n, 256, seed=n)
    x[-1, 200] = np.nan                       # NaN in, NaN out: the block's scale is NaN
    with np.errstate(invalid="ignore"):
        ours_all = int8_numpy.quantize_rows(x)
    for ours, kernels in zip(ours_all, quantize_activations(x)):
        assert ours.dtype == kernels.dtype
        np.testing.assert_array_equal(ours, kernels)
    assert np.isnan(ours_all[1][-1, 200 // 32])


@pytest.mark.parametrize("qtype", INTERLEAVED_TYPES, ids=lambda t: t.name)
@pytest.mark.parametrize("n", [1, 7, 15, 40])   # tiles of 8, 4, 2 and 1 rows
def test_products_are_the_kernels_bits(qtype, n, monkeypatch):
    m, k = 150, 512                          # 150 rows: two whole groups and a padded one
    w = InterleavedWeight.from_blocks(random_blocks(qtype, m, k, seed=n), qtype, m, k)
    x = activations(n, k, seed=10 + n)
    _, head, tail = _product_call(w, "int8")
    kernels = np.empty((n, m), np.float32)
    _int8_product(x, *head, kernels, *tail)
    monkeypatch.setattr(int8_numpy, "_ROWS_AT_ONCE", 64)    # three passes over the groups
    ours = np.full((n, m), np.nan, np.float32)
    int8_numpy.product(int8_numpy.quantize_rows(x), *head, ours)
    np.testing.assert_array_equal(ours, kernels)


@pytest.mark.parametrize("bits,group,zp", [(4, 64, True), (4, 32, False), (8, 128, False)],
                         ids=str)
def test_grouped_weights_products_are_the_kernels_bits(bits, group, zp):
    from .test_interleaved import grouped_weight
    _, w = grouped_weight(bits, group, zp, m=150, k=512)
    x = activations(7, 512, seed=5)
    _, head, tail = _product_call(w, "int8")
    kernels = np.empty((7, 150), np.float32)
    _int8_product(x, *head, kernels, *tail)
    ours = np.full((7, 150), np.nan, np.float32)
    int8_numpy.product(int8_numpy.quantize_rows(x), *head, ours)
    np.testing.assert_array_equal(ours, kernels)


def test_per_token_products_are_the_kernels_bits():
    """``int8_per_token`` (one float32 scale a row): the twin's bits too, a zero row, a tiny
    and a large one included."""
    from gradient.quant.ggml import GGMLType
    m, k = 40, 256
    w = InterleavedWeight.from_blocks(random_blocks(GGMLType.Q8_0, m, k, seed=3), "Q8_0", m, k)
    x = activations(5, k, seed=4)
    x[1] = 0                                       # a zero row: scale 0, codes 0
    x[2] *= 1e-6
    _, head, tail = _product_call(w, "int8_per_token")
    assert tail[-1] is True
    kernels = np.empty((5, m), np.float32)
    _int8_product(x, *head, kernels, *tail)
    ours = np.full((5, m), np.nan, np.float32)
    int8_numpy.product(int8_numpy.quantize_rows(x, per_token=True), *head, ours)
    np.testing.assert_array_equal(ours, kernels)


def test_the_products_before_the_kernels_are_compiled_are_the_twins(monkeypatch, qtype="Q6_K"):
    """What interleaved_matmul and int8_products compute while the kernels are not compiled
    (a first run: compiled_already says no): the twin, with the kernels' bits."""
    from gradient.quant import interleaved
    from gradient.quant.ggml import GGMLType
    m, k = 40, 256
    weights = [InterleavedWeight.from_blocks(random_blocks(GGMLType[qtype], m, k, seed=s),
                                             GGMLType[qtype], m, k) for s in (1, 2)]
    x = activations(3, k, seed=3)
    compiled = [interleaved.interleaved_matmul(x, weights[0]),
                *interleaved.int8_products(x, weights)]
    monkeypatch.setattr(interleaved, "compiled_already", lambda dispatcher, args: False)
    twin = [interleaved.interleaved_matmul(x, weights[0]),
            *interleaved.int8_products(x, weights)]
    for a, b in zip(twin, compiled):
        np.testing.assert_array_equal(a, b)
