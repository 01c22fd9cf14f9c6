"""QuantizedLinear: forward against the dequantized weight, gradients through the blocks, the
reference quantizer against gguf's, and what the layer keeps (no float copy of its weight)."""

import ml_dtypes
import numpy as np
import pytest

import gradient
from gradient import nn
from gradient.backends.cpu_float_rows import float_rows_product
from gradient.errors import ShapeError
from gradient.quant.ggml import GGMLType, UnsupportedQuantTypeError
from gradient.quant.linear import QUANTIZABLE, QuantizedLinear, quantize

from .gguf_fixtures import gguf

T = gguf.GGMLQuantizationType


def random_weight(m, k, seed=0):
    w = np.random.default_rng(seed).standard_normal((m, k)).astype(np.float32)
    w[0, :32] = 0.0                      # an all-zero block: scale 0
    w[1, :32] = 0.5                      # a constant block: max == min
    w[2, 5] = 40.0                       # an outlier setting its block's scale
    return w


def ties_weight():
    """A (5, 96) weight whose special blocks have scale 1 and values halfway between two
    quantization levels: rounding half up (ggml) and half to even disagree on them."""
    w = random_weight(5, 96)
    halves = np.arange(30, dtype=np.float32) % 7 + 0.5
    for row, col, ends in ((3, 0, (127, 0)), (3, 32, (-8, 0)), (3, 64, (0, 15)),
                           (4, 0, (0, 31)), (4, 32, (-16, 0))):
        # scale 1 for Q8_0 (amax 127), Q4_0 (-8), Q4_1 (0..15), Q5_1 (0..31), Q5_0 (-16)
        w[row, col:col + 32] = np.concatenate([ends, halves * (1 if ends[0] >= 0 else -1)])
    w[4, 70] = (np.uint32(0x7F800001)).view(np.float32)     # a signalling NaN
    return w


def close(a, b, rtol=1e-5):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape
    assert np.max(np.abs(a - b)) <= rtol * max(1.0, np.max(np.abs(b))), np.max(np.abs(a - b))


@pytest.mark.parametrize("qtype", QUANTIZABLE, ids=lambda t: t.name)
def test_quantize_is_bit_exact_with_gguf(qtype):
    w = ties_weight()
    if qtype != GGMLType.BF16:           # (BF16 turns the NaN into a quiet NaN; others: no NaNs)
        w[4, 70] = 1.0
    ours = quantize(w, qtype)
    ref = np.ascontiguousarray(gguf.quants.quantize(w, T(int(qtype)))).view(np.uint8)
    assert ours.dtype == np.uint8 and ours.shape == ref.reshape(5, -1).shape
    np.testing.assert_array_equal(ours, ref.reshape(5, -1))


@pytest.mark.parametrize("qtype", ["Q4_1", "Q8_0", "Q5_0", "F16"])
def test_from_linear_matches_dequantized_weight(qtype):
    gradient.manual_seed(0)
    linear = nn.Linear(96, 40)
    layer = QuantizedLinear.from_linear(linear, qtype, activations="float32")
    w = layer.dequantize().numpy()
    ref = gguf.quants.dequantize(quantize(linear.weight.detach().numpy(), qtype), T[qtype])
    np.testing.assert_array_equal(w, ref.reshape(40, 96))
    x = gradient.randn(2, 3, 96)
    with gradient.no_grad():
        y = layer(x)
        y_float = linear(x)
    assert y.shape == (2, 3, 40) and y.dtype == gradient.float32 and y.grad_fn is None
    expected = x.numpy() @ w.T.astype(np.float64) + linear.bias.detach().numpy()
    close(y.numpy(), expected)
    # and the float layer's output, up to the quantization error of the weight
    err = np.abs(y.numpy() - y_float.numpy()).max() / np.abs(y_float.numpy()).max()
    assert err < {"Q4_1": 0.2, "Q5_0": 0.1, "Q8_0": 0.01, "F16": 1e-3}[qtype]
    assert QuantizedLinear.from_linear(linear, qtype).activations == "float32"   # the default
    # int8 activations: the same up to the activations' own rounding (F16 has no int8 kernel
    # and stays exact)
    fast = QuantizedLinear.from_linear(linear, qtype, activations="int8")
    with gradient.no_grad():
        y_int8 = fast(x).numpy()
    err = np.abs(y_int8 - expected).max() / np.abs(expected).max()
    assert (np.array_equal(y_int8, y.numpy()) if qtype == "F16" else 0 < err < 2e-2), err


@pytest.mark.parametrize("n", [1, 5, 33])
def test_from_blocks_kquant_forward(n):
    # exact products (float32 activations), by the repacked kernel (n <= 8) and by tiles
    rng = np.random.default_rng(n)
    raw = rng.integers(0, 256, (24, 2, 210), dtype=np.uint8)     # Q6_K, 24 x 512
    raw[..., 208:210] = (rng.standard_normal((24, 2, 1)) * 0.01).astype(np.float16).view(np.uint8)
    blocks = raw.reshape(24, -1)
    bias = rng.standard_normal(24).astype(np.float32)
    layer = QuantizedLinear.from_blocks(blocks, GGMLType.Q6_K, 512, 24, bias=bias,
                                        activations="float32")
    assert np.shares_memory(layer.qweight, blocks)           # the blocks, not a copy
    w = gguf.quants.dequantize(blocks, T.Q6_K).reshape(24, 512)
    x = rng.standard_normal((n, 512)).astype(np.float32)
    with gradient.no_grad():
        y = layer(gradient.from_numpy(x))
    close(y.numpy(), x.astype(np.float64) @ w.T + bias)


def test_gradients_flow_through_the_blocks():
    rng = np.random.default_rng(1)
    w = random_weight(20, 64)
    layer = QuantizedLinear.from_blocks(quantize(w, "Q4_0"), "Q4_0", 64, 20,
                                        bias=np.zeros(20, np.float32))
    wq = layer.dequantize().numpy().astype(np.float64)
    x = gradient.tensor(rng.standard_normal((3, 64)).astype(np.float32), requires_grad=True)
    u = rng.standard_normal((3, 20)).astype(np.float32)
    y = layer(x)
    assert y.requires_grad
    (y * gradient.from_numpy(u)).sum().backward()
    close(x.grad.numpy(), u @ wq)                            # d/dx = u @ W
    close(layer.bias.grad.numpy(), u.sum(0))                 # the bias trains as usual
    # double backward: grad_x = g @ W is itself a product by the blocks
    g = gradient.tensor(u, requires_grad=True)
    (gx,) = gradient.autograd.grad(layer(x), x, grad_outputs=g, create_graph=True)
    v = rng.standard_normal((3, 64)).astype(np.float32)
    (gx * gradient.from_numpy(v)).sum().backward()
    close(g.grad.numpy(), v @ wq.T)                          # d/dg (g @ W . v) = v @ W.T


def test_bias_grad_only_keeps_the_kernel_path():
    # the input needs no grad: the product is a constant, the bias still gets its gradient
    layer = QuantizedLinear.from_linear(nn.Linear(32, 8), "Q8_0")
    y = layer(gradient.randn(4, 32))
    y.sum().backward()
    close(layer.bias.grad.numpy(), np.full(8, 4.0))


def test_dtypes_follow_the_input():
    layer = QuantizedLinear.from_linear(nn.Linear(64, 16, bias=False), "Q8_0")
    x = gradient.randn(2, 64)
    with gradient.no_grad():
        ref = layer(x).numpy()
        for dtype in (gradient.bfloat16, gradient.float16, gradient.float64):
            y = layer(x.to(dtype))
            assert y.dtype is dtype
            close(y.float().numpy(), ref, rtol=2e-2 if dtype.itemsize == 2 else 1e-5)


def test_module_state():
    linear = nn.Linear(64, 16)
    layer = QuantizedLinear.from_linear(linear, "Q4_1")
    assert [name for name, _ in layer.named_parameters()] == ["bias"]
    assert list(layer.state_dict()) == ["bias"]
    before = layer.qweight
    layer.to(gradient.bfloat16)                  # casts the bias, leaves the blocks alone
    assert layer.qweight is before and layer.bias.dtype is gradient.bfloat16
    assert not layer.qweight.flags.writeable
    assert repr(layer) == ("QuantizedLinear(in_features=64, out_features=16, qtype=Q4_1, "
                           "bias=True, activations=float32, 640 B)")   # the blocks' own bytes
    with gradient.no_grad():
        assert layer(gradient.randn(3, 64)).dtype is gradient.float32   # bias cast to the input's


def test_errors():
    blocks = quantize(random_weight(8, 64), "Q8_0")
    layer = QuantizedLinear.from_blocks(blocks, "Q8_0", 64, 8)
    with pytest.raises(ShapeError, match=r"input of shape \(2, 32\) has 32 features, expected 64"):
        layer(gradient.randn(2, 32))
    with pytest.raises(UnsupportedQuantTypeError, match="no kernel for GGML type IQ2_XXS"):
        QuantizedLinear.from_blocks(blocks, GGMLType.IQ2_XXS, 64, 8)
    with pytest.raises(UnsupportedQuantTypeError, match="unknown GGML type 'Q9'"):
        QuantizedLinear.from_blocks(blocks, "Q9", 64, 8)
    with pytest.raises(UnsupportedQuantTypeError, match="cannot quantize to Q4_K.*llama-quantize"):
        QuantizedLinear.from_linear(nn.Linear(256, 4), "Q4_K")
    with pytest.raises(ShapeError, match=r"bias must have shape \(8,\), got \(9,\)"):
        QuantizedLinear.from_blocks(blocks, "Q8_0", 64, 8, bias=np.zeros(9))
    with pytest.raises(ShapeError, match="takes 544 bytes"):
        QuantizedLinear.from_blocks(blocks[:4], "Q8_0", 64, 8)
    with pytest.raises(ShapeError, match="in_features=48 is not a multiple of 32"):
        quantize(np.ones((2, 48)), "Q4_0")


def test_bfloat16_activations_are_llama_cpps_product_for_a_bf16_weight():
    """activations="bfloat16" (a BF16 GGUF under llama.cpp's numerics): x rounded to bfloat16,
    then the bfloat16 products, for a prompt's many rows too (through the GEMM); the gradient
    of x is still the exact product; only a BF16 weight takes it."""
    weight = random_weight(48, 96)
    blocks = quantize(weight, "BF16")
    layer = QuantizedLinear.from_blocks(blocks, "BF16", 96, 48, activations="bfloat16")
    exact = QuantizedLinear.from_blocks(blocks, "BF16", 96, 48)
    assert "activations=bfloat16" in repr(layer)
    w = blocks.view(ml_dtypes.bfloat16).reshape(48, 96)
    for rows in (1, 5, 200):
        x = gradient.randn(rows, 96)
        rounded = x.numpy().astype(ml_dtypes.bfloat16)
        with gradient.no_grad():
            y = layer(x).numpy()
        reference = rounded.astype(np.float64) @ w.astype(np.float64).T
        np.testing.assert_allclose(y, reference, rtol=1e-5, atol=1e-5)
        if rows <= 64:    # the few rows' kernel: the bits of a bfloat16 model's product
            np.testing.assert_array_equal(y, float_rows_product(rounded, w))
        with gradient.no_grad():
            assert np.abs(exact(x).numpy() - y).max() > 0     # not the float32 product
    x = gradient.randn(3, 96, requires_grad=True)
    layer(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.ones((3, 48)) @ w.astype(np.float32),
                               rtol=1e-5, atol=1e-5)
    assert layer.exact().activations == "float32"
    with pytest.raises(ValueError, match="activations='bfloat16' is the product of a BF16"):
        QuantizedLinear.from_blocks(quantize(weight, "Q8_0"), "Q8_0", 96, 48,
                                    activations="bfloat16")
