"""Device "cuda": what must hold on every machine (import, availability, clear errors), and the
backend's primitives on a GPU (marked ``gpu``, skipped without one)."""

import numpy as np
import pytest

import gradient
from gradient.backends import cuda as cuda_backend
from gradient.errors import DeviceError, DTypeError

from .kernel_spy import record_kernel_results

GPU = gradient.cuda.is_available()


# ---------------------------------------------------------------------- every machine
def test_device_strings_parse_without_a_gpu():
    assert gradient.device("cuda:1").index == 1
    assert str(gradient.device("cuda", 0)) == "cuda:0"
    assert gradient.device("cuda") == gradient.device("cuda:0")


def test_availability_is_consistent():
    ok, why = cuda_backend.available()
    assert gradient.cuda.is_available() is ok
    assert (gradient.cuda.device_count() > 0) is ok
    assert ok or why  # unavailable: there is a reason


@pytest.mark.skipif(GPU, reason="checks the errors of a machine without a GPU")
def test_using_cuda_without_a_gpu_raises_a_clear_error():
    x = gradient.ones(3)
    for use in (lambda: x.to("cuda"), lambda: x.cuda(), lambda: gradient.randn(2, device="cuda"),
                lambda: gradient.nn.Linear(2, 2).to("cuda"), gradient.cuda.synchronize,
                gradient.cuda.memory_allocated, gradient.cuda.max_memory_allocated,
                gradient.cuda.empty_cache):
        with pytest.raises(DeviceError, match="device 'cuda' is not available: .*Use device='cpu'"):
            use()
    assert x.device.type == "cpu" and x.sum().item() == 3.0  # the CPU is untouched


def test_missing_cupy_names_the_install_command(monkeypatch):
    monkeypatch.setattr(cuda_backend, "_cupy", lambda: None)
    assert cuda_backend.device_count() == 0
    with pytest.raises(DeviceError, match=r"pip install 'gradient\[cuda\]'"):
        cuda_backend.load_backend()


def test_cuda_manual_seed_seeds_the_shared_generator():
    gradient.cuda.manual_seed(3)
    a = gradient.randn(4)
    gradient.manual_seed(3)
    np.testing.assert_array_equal(a.numpy(), gradient.randn(4).numpy())


# ---------------------------------------------------------------------- on a GPU
@pytest.mark.gpu
@pytest.mark.skipif(not GPU, reason="no CUDA device (or no CuPy)")
@pytest.mark.parametrize("dtype", ["float32", "float16", "int64", "bool"])
def test_round_trip_keeps_values_and_dtype(dtype):
    data = (np.arange(12).reshape(3, 4) % 5).astype(dtype)
    x = gradient.tensor(data).to("cuda")
    assert x.device.type == "cuda" and x.dtype.name == dtype
    np.testing.assert_array_equal(x.cpu().numpy(), data)


@pytest.mark.gpu
@pytest.mark.skipif(not GPU, reason="no CUDA device (or no CuPy)")
def test_random_numbers_equal_the_cpu_ones_for_one_seed():
    gradient.manual_seed(0)
    cpu = gradient.randn(5, 7)
    gradient.manual_seed(0)
    np.testing.assert_array_equal(gradient.randn(5, 7, device="cuda").cpu().numpy(), cpu.numpy())


@pytest.mark.gpu
@pytest.mark.skipif(not GPU, reason="no CUDA device (or no CuPy)")
def test_matmul_and_autograd_on_the_gpu_match_the_cpu():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 8, 16)), rng.standard_normal((16, 4))
    results = []
    for device in ("cpu", "cuda"):
        x = gradient.tensor(a, dtype=gradient.float32, device=device, requires_grad=True)
        w = gradient.tensor(b, dtype=gradient.float32, device=device, requires_grad=True)
        (x @ w).relu().sum().backward()
        results.append([t.detach().cpu().numpy() for t in (x @ w, x.grad, w.grad)])
    for ours, ref in zip(*results):
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not GPU, reason="no CUDA device (or no CuPy)")
def test_float16_matmul_accumulates_in_float32():
    # 4096 products of 1: a float16 accumulator would stop at 2048
    x = gradient.ones(1, 4096, dtype=gradient.float16, device="cuda")
    assert (x @ x.T).item() == 4096.0


@pytest.mark.gpu
@pytest.mark.skipif(not GPU, reason="no CUDA device (or no CuPy)")
@pytest.mark.parametrize("rows", [1, 37])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("layout", ["row-major", "transposed"])
def test_float16_linear_is_one_cublas_product_rounded_once(rows, bias, layout, monkeypatch):
    """A float16 Linear on the GPU: cuBLAS's float16 GEMM with a float32 result and the bias
    added before the one rounding (as torch's addmm), reading the weight in either layout."""
    F, f16 = gradient.nn.functional, gradient.float16
    calls = record_kernel_results(monkeypatch, "low_precision_linear", "cuda")
    rng = np.random.default_rng(rows)
    x = rng.standard_normal((rows, 96)).astype(np.float16)
    w = rng.standard_normal((80, 96)).astype(np.float16)
    b = rng.standard_normal(80).astype(np.float16) if bias else None
    if layout == "row-major":
        weight = gradient.tensor(w, device="cuda")
    else:
        weight = gradient.tensor(np.ascontiguousarray(w.T), device="cuda").T
    out = F.linear(gradient.tensor(x, device="cuda"), weight,
                   None if b is None else gradient.tensor(b, device="cuda"))
    assert out.dtype is f16 and calls and calls[-1] is not None
    exact = x.astype(np.float64) @ w.astype(np.float64).T + (0 if b is None else b)
    # one rounding of a float32 sum: within one float16 step of the exact value
    np.testing.assert_allclose(out.cpu().numpy().astype(np.float64), exact,
                               rtol=2 ** -10, atol=2 ** -14)
    # float32 accumulation: 4096 products of 1 plus a bias of 4 (float16 would stop at 2048)
    ones = gradient.ones(1, 4096, dtype=f16, device="cuda")
    total = F.linear(ones, gradient.ones(3, 4096, dtype=f16, device="cuda"),
                     gradient.full((3,), 4.0, dtype=f16, device="cuda"))
    assert total.cpu().tolist() == [[4100.0] * 3]
    # no input features: the bias alone (or zeros)
    empty, no_features = (gradient.zeros(n, 0, dtype=f16, device="cuda") for n in (2, 3))
    bias3 = gradient.tensor([1.0, 2.0, 3.0], dtype=f16, device="cuda")
    assert F.linear(empty, no_features, bias3).cpu().tolist() == [[1, 2, 3]] * 2
    assert F.linear(empty, no_features).cpu().tolist() == [[0, 0, 0]] * 2


@pytest.mark.gpu
@pytest.mark.skipif(not GPU, reason="no CUDA device (or no CuPy)")
def test_bfloat16_is_refused_with_advice():
    with pytest.raises(DTypeError, match="float16"):
        gradient.ones(2, dtype=gradient.bfloat16).to("cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not GPU, reason="no CUDA device (or no CuPy)")
def test_memory_statistics_follow_allocations():
    gradient.cuda.synchronize()
    gradient.cuda.reset_peak_memory_stats()
    before = gradient.cuda.memory_allocated()
    x = gradient.empty(1 << 20, device="cuda")  # 4 MiB
    assert gradient.cuda.memory_allocated() >= before + (4 << 20)
    del x
    assert gradient.cuda.max_memory_allocated() >= before + (4 << 20)
    gradient.cuda.empty_cache()
    assert gradient.cuda.memory_reserved() >= gradient.cuda.memory_allocated()
    assert isinstance(gradient.cuda.get_device_name(), str)
