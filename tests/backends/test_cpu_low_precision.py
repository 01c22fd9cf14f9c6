"""The CPU kernel for products with bfloat16 and float16 weights read in place (decoding a few
rows)."""

import ml_dtypes
import numpy as np
import pytest

import gradient
import gradient.nn.functional as F

pytest.importorskip("numba")
from gradient.backends.cpu_low_precision import MAX_ROWS, low_precision_linear  # noqa: E402
from gradient.backends.cpu_float_rows import MAX_ROWS as ROWS_LIMIT  # noqa: E402
from gradient.backends.cpu_float_rows import float_rows_product  # noqa: E402

from .kernel_spy import record_kernel_calls, without_kernel  # noqa: E402

BF16 = ml_dtypes.bfloat16


def _weight(rng, out_features, in_features, layout, dtype):
    """A half-precision (out, in) weight, C-contiguous or the transpose of an (in, out) array."""
    if layout == "rows":
        return rng.standard_normal((out_features, in_features)).astype(dtype)
    return rng.standard_normal((in_features, out_features)).astype(dtype).T


@pytest.mark.parametrize("dtype", [BF16, np.float16])
def test_every_half_precision_value_is_widened_exactly(dtype):
    """All 65536 bit patterns (zeros, subnormals, normals, infinities, NaNs) times 1.0."""
    weight = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(dtype).reshape(-1, 1)
    got = low_precision_linear(np.ones((1, 1), np.float32), weight)[0]
    want = weight[:, 0].astype(np.float32)
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan)
    assert np.array_equal(got[~nan].view(np.uint32), want[~nan].view(np.uint32))


@pytest.mark.parametrize("dtype", [BF16, np.float16])
@pytest.mark.parametrize("layout", ["rows", "transposed"])
@pytest.mark.parametrize("rows", [1, 3, MAX_ROWS])
@pytest.mark.parametrize("out_features, in_features", [(1, 1), (5, 3), (37, 70), (300, 129)])
def test_matches_the_float32_product_of_the_widened_weight(dtype, layout, rows, out_features,
                                                          in_features):
    rng = np.random.default_rng(out_features + rows)
    weight = _weight(rng, out_features, in_features, layout, dtype)
    x = rng.standard_normal((rows, in_features)).astype(np.float32)
    y = low_precision_linear(x, weight)
    assert y.dtype == np.float32 and y.shape == (rows, out_features)
    expected = x.astype(np.float64) @ weight.astype(np.float64).T   # the widening is exact
    scale = np.abs(x).astype(np.float64) @ np.abs(weight.astype(np.float64)).T
    assert np.all(np.abs(y - expected) <= 1e-6 * in_features * scale + 1e-30)
    x16 = x.astype(dtype)   # half-precision rows of x are widened exactly too
    stored_as_rows = weight.flags.c_contiguous     # (a transposed vector is both)
    product16 = (float_rows_product(x16, weight) if stored_as_rows
                 else low_precision_linear(x16, weight))
    if dtype is BF16 and layout == "rows":
        # bfloat16 by bfloat16 rows: the pairs' arithmetic of cpu_float_rows (its tests)
        exact16 = x16.astype(np.float64) @ weight.astype(np.float64).T
        scale16 = np.abs(x16.astype(np.float64)) @ np.abs(weight.astype(np.float64)).T
        assert np.all(np.abs(product16 - exact16) <= 1e-6 * in_features * scale16 + 1e-30)
    else:
        np.testing.assert_array_equal(product16,
                                      low_precision_linear(x16.astype(np.float32), weight))
    if stored_as_rows:     # without a bias, that product rounded once to x's type, as stored
        rounded = low_precision_linear(x16, weight)
        assert rounded.dtype == dtype
        np.testing.assert_array_equal(rounded.view(np.uint16),
                                      product16.astype(dtype).view(np.uint16))
    bias = rng.standard_normal(out_features).astype(dtype)   # added in float32 after the product
    np.testing.assert_array_equal(low_precision_linear(x, weight, bias),
                                  y + bias.astype(np.float32))


def test_declines_what_it_does_not_take():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((8, 6)).astype(BF16)
    x = np.ones((2, 6), np.float32)
    assert low_precision_linear(x, w) is not None
    # more rows than the kernel reads fast: a GEMM's job for a weight stored transposed
    # (GPT-2's Conv1D, after MAX_ROWS); one stored as rows takes any, a block at a time
    assert low_precision_linear(np.ones((MAX_ROWS + 1, 6), np.float32), w.T.copy().T) is None
    assert low_precision_linear(np.ones((MAX_ROWS + 1, 6), np.float32), w) is not None
    assert low_precision_linear(np.ones((3 * ROWS_LIMIT + 1, 6), np.float32), w) is not None
    assert low_precision_linear(x, w.astype(np.float32)) is None      # float32 goes to BLAS
    assert low_precision_linear(x, w[:, ::2]) is None                 # neither layout
    assert low_precision_linear(np.ones((2, 5), np.float32), w) is None
    assert low_precision_linear(np.ones((2, 6), np.int64), w) is None
    assert low_precision_linear(x, w, np.ones(7, BF16)) is None       # a bias of the wrong size


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("bias", [True, False])
def test_half_precision_linear_uses_it_and_agrees_with_torch(monkeypatch, bias, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    w = rng.standard_normal((40, 24)).astype(np.float32)
    b = rng.standard_normal(40).astype(np.float32) if bias else None
    x = rng.standard_normal((2, 1, 24)).astype(np.float32)
    calls = record_kernel_calls(monkeypatch, "low_precision_linear")
    to = lambda a: None if a is None else gradient.tensor(a).to(getattr(gradient, dtype))  # noqa: E731
    ours = F.linear(to(x), to(w), to(b)).float().numpy()
    assert calls == ["low_precision_linear"] and ours.shape == (2, 1, 40)
    tt = lambda a: None if a is None else torch.tensor(a).to(getattr(torch, dtype))  # noqa: E731
    theirs = torch.nn.functional.linear(tt(x), tt(w), tt(b)).float().numpy()
    # float32 sums in another order, one rounding to the half type: one of its steps apart
    step = 2 ** -7 if dtype == "bfloat16" else 2 ** -10
    np.testing.assert_allclose(ours, theirs, rtol=step, atol=1e-6)
    without_kernel(monkeypatch, "low_precision_linear")
    composed = F.linear(to(x), to(w), to(b)).float().numpy()
    np.testing.assert_allclose(ours, composed, rtol=step, atol=1e-6)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("affine", [True, False])
def test_half_precision_layer_norm_in_inference_takes_the_float32_kernel(monkeypatch, dtype,
                                                                         affine):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 2, 48)).astype(np.float32) * 3 + 1
    w, b = (rng.standard_normal(48).astype(np.float32) for _ in range(2))
    to = lambda a: gradient.tensor(a).to(getattr(gradient, dtype))  # noqa: E731
    tt = lambda a: torch.tensor(a).to(getattr(torch, dtype))  # noqa: E731
    calls = record_kernel_calls(monkeypatch, "layer_norm")   # it takes float32/float64 only
    params = (to(w), to(b)) if affine else (None, None)
    with gradient.no_grad():
        ours = F.layer_norm(to(x), (48,), *params)
    assert calls == ["layer_norm"] and ours.dtype is getattr(gradient, dtype)
    theirs = torch.nn.functional.layer_norm(tt(x), (48,), *((tt(w), tt(b)) if affine else
                                                             (None, None)))
    step = 2 ** -7 if dtype == "bfloat16" else 2 ** -10
    np.testing.assert_allclose(ours.float().numpy(), theirs.float().numpy(), rtol=step, atol=step)
    # recording: the composition, whose gradients autograd derives
    leaf = to(x).requires_grad_()
    F.layer_norm(leaf, (48,), *params).float().sum().backward()
    assert len(calls) == 1 and leaf.grad is not None
