"""WeightOnlyLinear on a GPU: products read the grouped codes by ``kernels/grouped_matvec.cu``.

The layers GPTQ, AWQ, compressed-tensors checkpoints and ``quantize(model, "int4"/"int8")``
make keep int4 or int8 codes with a scale (and a zero point) per group of inputs. On a GPU the
codes, scales and zero points go up once and the CUDA backend's ``grouped_matmul`` multiplies
with them: few rows of x straight from the codes, many through the weight dequantized once
and cuBLAS. Checked on the CPU emulator of ``tests/backends/cuda_emulator.py`` (through the
backend's own launcher, so launch shapes and argument types are checked too) and, marked
``gpu``, on a real device:

* the products against float64 ones of the dequantized weight, every format (int4 symmetric
  and with zero points, int8 per channel and grouped; float16 and float32 scales), for 1 to
  11 rows, on both paths (several passes of 8 rows, and dequantize + matmul), int4 one and
  four output rows a warp;
* the dequantized weight bit for bit with the CPU's (the emulator's matmul is NumPy's);
* the layer on an emulated device: the kernel runs, the output stays there, the weight goes
  up once, an activation-ordered layer and bfloat16 scales give the CPU layer's result;
* a quantized LLaMA (int4 with zero points, int8) on the device: the CPU's logits and greedy
  tokens.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import gradient
from gradient.quant import WeightOnlyLinear, quantize_weight

from ..backends.cuda_emulator import build_emulator
from ..backends.test_cuda_kernels import (_check_args, emulated_device,  # noqa: F401
                                          emulated_launchers)

try:
    import cupy as cp
    cp.cuda.runtime.getDeviceCount()
except Exception:   # no CuPy, or no CUDA device
    cp = None

#: (bits, group_size, zero_point, in_features): int4 with a part-filled last warp step (6
#: blocks of 32), int4 groups of 64 with zero points, int8 per channel over a width that is
#: no multiple of 4, int8 in groups of 32
CASES = [(4, 32, False, 192), (4, 64, True, 320), (8, None, False, 100), (8, 32, False, 96)]
ROWS = 37    # the last block of warps part empty


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    """The emulator with only grouped_matvec.cu built (overrides test_cuda_kernels' fixture,
    which builds every kernel file)."""
    return build_emulator(tmp_path_factory.mktemp("grouped_emulator"), _check_args,
                          ["grouped_matvec"])


class _Gpu:
    """The CUDA launchers on the current device, with host arrays in and out."""

    def __init__(self):
        from gradient.backends.cuda import fused
        self.fused = fused

    def product(self, x, codes, scales, zeros, bits, group, order=None):
        dev = [None if a is None else cp.asarray(a) for a in (x, codes, scales, zeros, order)]
        return cp.asnumpy(self.fused.grouped_matmul(dev[0], dev[1], dev[2], dev[3], bits, group,
                                                    dev[4]))


class _Emulated:
    def __init__(self, fused):
        self.fused = fused

    def product(self, x, codes, scales, zeros, bits, group, order=None):
        return self.fused.grouped_matmul(x, codes, scales, zeros, bits, group, order)


@pytest.fixture(params=["emulator", pytest.param("gpu", marks=pytest.mark.gpu)])
def runner(request):
    if request.param == "gpu":
        if cp is None:
            pytest.skip("no CuPy or no CUDA device")
        return _Gpu()
    return _Emulated(request.getfixturevalue("emulated_launchers"))


def _packed(case, scale_dtype=np.float16, seed=0):
    bits, group, zero_point, cols = case
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((ROWS, cols)).astype(np.float32) + np.float32(0.3)
    p = quantize_weight(w, bits, group, zero_point)
    if scale_dtype != np.float16:
        p = dataclasses.replace(p, scales=p.scales.astype(scale_dtype))
    return p


def _check(x, w, y):
    ref = x.astype(np.float64) @ w.astype(np.float64).T
    bound = np.abs(x.astype(np.float64)) @ np.abs(w.astype(np.float64)).T
    assert y.dtype == np.float32 and y.shape == ref.shape
    err = np.abs(y - ref)
    assert np.all(err <= 1e-5 * np.abs(ref) + 1e-5 * bound), f"max error {err.max():.3g}"


@pytest.mark.parametrize("scale_dtype", [np.float16, np.float32])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"int{c[0]}-g{c[1]}{'-zp' * c[2]}")
def test_products_match_the_dequantized_weight(runner, case, scale_dtype, monkeypatch):
    p = _packed(case, scale_dtype)
    w = p.dequantize()
    rng = np.random.default_rng(1)
    group = p.group_size
    for n in (1, 3, 8, 11):           # 11 rows: dequantized + matmul
        x = rng.standard_normal((n, w.shape[1])).astype(np.float32)
        _check(x, w, runner.product(x, p.qweight, p.scales, p.zeros, p.bits, group))
    # 11 rows straight from the codes: two passes, of 8 rows and of 3
    monkeypatch.setattr(runner.fused, "GROUPED_MATVEC_ROWS", 16)
    _check(x, w, runner.product(x, p.qweight, p.scales, p.zeros, p.bits, group))
    # int4 4 output rows a warp (37 rows: the last warp has 1)
    monkeypatch.setattr(runner.fused, "GROUPED_INT4_WIDE_ROWS", 1)
    for n in (3, 11):
        _check(x[:n], w, runner.product(x[:n], p.qweight, p.scales, p.zeros, p.bits, group))


@pytest.mark.parametrize("case", CASES[:3], ids=lambda c: f"int{c[0]}")
def test_many_rows_multiply_the_cpu_dequantized_weight(emulated_launchers, case):
    """The dequantizing kernel gives the CPU's weight bit for bit: the emulator's matmul is
    NumPy's, so the products are the same bits too."""
    p = _packed(case, seed=2)
    x = np.random.default_rng(3).standard_normal((9, p.in_features)).astype(np.float32)
    y = emulated_launchers.grouped_matmul(x, p.qweight, p.scales, p.zeros, p.bits,
                                          p.group_size, None)
    np.testing.assert_array_equal(y.view(np.uint32), (x @ p.dequantize().T).view(np.uint32))


def test_launcher_declines_what_the_kernels_do_not_take(emulated_launchers):
    p = _packed(CASES[1])
    product = emulated_launchers.grouped_matmul
    x = np.ones((1, p.in_features), np.float32)
    args = (p.qweight, p.scales, p.zeros, 4, 64, None)
    assert product(x, *args) is not None
    f64 = p.scales.astype(np.float64)
    assert product(x, p.qweight, f64, p.zeros, 4, 64, None) is None       # scales' dtype
    assert product(x[:, :-32], *args) is None                              # not the width
    assert product(x, p.qweight, p.scales, p.zeros, 4, 48, None) is None   # group vs scales
    assert product(x, p.qweight, p.scales, p.zeros, 8, 64, None) is None   # int8 zero points
    assert product(x[0], *args) is None                                    # not 2-d


# ---------------------------------------------------------------------- the layer
@pytest.fixture
def device(emulated_device, monkeypatch):
    """A device with the grouped_matmul launcher; records its uploads."""
    backend, calls = emulated_device("emulated_grouped_gpu", ("grouped_matmul",))
    uploads = []
    from_numpy = backend.from_numpy
    monkeypatch.setattr(backend, "from_numpy", lambda a: uploads.append(a.dtype) or from_numpy(a))
    return backend, calls, uploads


@pytest.mark.parametrize("case", CASES[1:3], ids=lambda c: f"int{c[0]}")
def test_layer_on_a_device_multiplies_with_the_kernel(device, case):
    backend, calls, uploads = device
    p = _packed(case, seed=4)
    bias = np.linspace(-1, 1, ROWS, dtype=np.float32)
    layer = WeightOnlyLinear(p, bias)
    x = gradient.tensor(np.random.default_rng(5).standard_normal((2, 3, p.in_features))
                        .astype(np.float32))
    with gradient.no_grad():
        on_cpu = layer(x).numpy()
        layer.to("emulated_grouped_gpu")
        for _ in range(2):
            y = layer(x.to("emulated_grouped_gpu"))
            assert y.device.type == "emulated_grouped_gpu" and tuple(y.shape) == (2, 3, ROWS)
            np.testing.assert_allclose(y.numpy(), on_cpu, rtol=1e-5, atol=1e-5)
    assert calls == ["grouped_matmul"] * 2
    n_weight = 2 if p.zeros is None else 3           # codes, scales (, zero points)
    assert len(uploads) == n_weight + 1 + 2          # the weight once; the bias; x twice


def test_activation_ordered_layer_with_bfloat16_scales_on_a_device(device):
    backend, calls, uploads = device
    import ml_dtypes
    p = _packed(CASES[1], scale_dtype=ml_dtypes.bfloat16, seed=6)
    order = np.random.default_rng(7).permutation(p.in_features)
    layer = WeightOnlyLinear(p, input_order=order)
    x = gradient.tensor(np.random.default_rng(8).standard_normal((4, p.in_features))
                        .astype(np.float32))
    with gradient.no_grad():
        on_cpu = layer(x).numpy()
        y = layer(x.to("emulated_grouped_gpu"))
    assert calls == ["grouped_matmul"]
    assert np.dtype(np.float32) in uploads and np.dtype(ml_dtypes.bfloat16) not in uploads
    np.testing.assert_allclose(y.numpy(), on_cpu, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------- a whole model
@pytest.fixture(params=["emulated", pytest.param("cuda", marks=pytest.mark.gpu)])
def model_device(request):
    if request.param == "cuda":
        if not gradient.cuda.is_available():
            pytest.skip("no CUDA device")
        return "cuda"
    request.getfixturevalue("emulated_device")("emulated_model_gpu", ("grouped_matmul",))
    return "emulated_model_gpu"


@pytest.mark.separate   # heavy: CI runs it in its own pass (-m separate)
@pytest.mark.parametrize("scheme,options", [("int4", {"group_size": 64, "zero_point": True}),
                                            ("int8", {})])
def test_a_quantized_llama_generates_on_the_device_as_on_the_cpu(model_device, scheme, options):
    from .test_weight_only import tiny_llama
    from gradient.quant import quantize
    q = quantize(tiny_llama(), scheme, **options)
    ids = gradient.tensor(np.random.default_rng(9).integers(0, 96, (2, 7)))
    with gradient.no_grad():
        on_cpu = q(ids).logits.numpy()
        tokens = q.generate(ids, max_new_tokens=4, do_sample=False).numpy()
        q.to(model_device)
        logits = q(ids.to(model_device)).logits
        assert logits.device.type == model_device
        np.testing.assert_allclose(logits.numpy(), on_cpu, rtol=1e-4, atol=1e-4)
        out = q.generate(ids.to(model_device), max_new_tokens=4, do_sample=False)
    np.testing.assert_array_equal(out.numpy(), tokens)
