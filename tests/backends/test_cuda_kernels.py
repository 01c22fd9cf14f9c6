"""The CUDA kernels of ``gradient/backends/cuda/kernels/*.cu`` and their compile module.

Three levels, from what any machine can check to what needs a GPU:

1. Every kernel file compiles to PTX for sm_80 and sm_90 (NVRTC through ctypes, or nvcc), and
   each kernel that :func:`kernel_names` reads from the text is an ``.entry`` of the PTX.
   Parametrized over the files found, so a new file is covered without touching this module.
2. The kernels run against NumPy/PyTorch references, through two runners that take the same
   launches (grid, block, argument tuple):

   * ``gpu`` (marked ``gpu``): CuPy's ``RawModule`` on a real device, float32 and float16;
   * ``emulator``: the same ``.cu`` source built by the host C++ compiler with a small shim
     (``threadIdx``; each CUDA thread a coroutine; ``__syncthreads`` and warp shuffles as
     barriers; software float16/bfloat16 with the device's rounding). It runs the very code
     and launches of the GPU tests on a machine without a GPU, bfloat16 included, so their
     arithmetic, their block reductions and the launch arguments are checked here. It does not
     model the memory system: races between threads and out-of-bounds accesses go unseen.

   Both runners first check each argument against the kernel's C signature, parsed from the
   source by :func:`kernel_signatures`: pointers get arrays of the matching dtype (or None for
   NULL), ``long long`` gets ``np.int64``, ``int`` ``np.int32``, ``float`` ``np.float32``,
   ``double`` ``np.float64`` (CuPy passes a scalar by its own size: a wrong type is garbage).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from gradient.backends.cuda import compile as cuda_compile
from gradient.backends.cuda.compile import (compile_ptx, cuda_include_dir, kernel_names,
                                            kernel_signatures, kernel_sources)
from gradient.errors import DeviceError

from .cuda_emulator import build_emulator, check_launch_args
from .kernel_spy import device_kernels

try:  # the test oracle of the kernel runs (the compile tests do not need it)
    import torch
except ImportError:
    torch = None

SOURCES = kernel_sources()
ARCHS = ["sm_80", "sm_90"]


# ============================================================================ 1. compilation
def _nvrtc_missing() -> str | None:
    try:
        cuda_compile.nvrtc_library()
    except DeviceError as exc:
        return str(exc)
    return None


def _nvcc_ptx(nvcc: str, stem: str, arch: str, tmp_dir) -> str:
    """PTX of kernels/<stem>.cu by ``nvcc -ptx`` (the fallback when NVRTC is not installed)."""
    out = os.path.join(tmp_dir, f"{stem}_{arch}.ptx")
    command = [nvcc, "-ptx", f"-arch={arch}", "-std=c++17", "-o", out,
               str(cuda_compile.KERNEL_DIR / f"{stem}.cu")]
    if cuda_include_dir() is not None:
        command.insert(1, f"-I{cuda_include_dir()}")
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"nvcc failed on {stem}.cu for {arch}:\n{done.stderr}")
    with open(out) as f:
        return f.read()


_PTX: dict = {}  # (stem, arch) -> PTX text, compiled once per session


def _ptx(stem: str, arch: str, tmp_dir) -> str:
    key = (stem, arch)
    if key not in _PTX:
        missing = _nvrtc_missing()
        if missing is None:
            _PTX[key] = compile_ptx(SOURCES[stem], arch, f"{stem}.cu")
        else:
            nvcc = shutil.which("nvcc")
            if nvcc is None:
                pytest.skip(f"no CUDA compiler: {missing}; nvcc is not on PATH either")
            _PTX[key] = _nvcc_ptx(nvcc, stem, arch, tmp_dir)
    return _PTX[key]


def _entries(ptx: str) -> set[str]:
    return set(re.findall(r"\.entry\s+([A-Za-z_]\w*)\s*\(", ptx))


def test_kernel_files_are_found():
    assert {"softmax", "norms", "rotary", "swiglu", "gelu", "cross_entropy", "embedding",
            "adamw"} <= set(SOURCES)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("stem", sorted(SOURCES))
def test_kernel_file_compiles_and_defines_its_kernels(stem, arch, tmp_path):
    names = kernel_names(SOURCES[stem])
    assert names, f"kernels/{stem}.cu defines no extern \"C\" __global__ function"
    entries = _entries(_ptx(stem, arch, tmp_path))
    missing = [name for name in names if name not in entries]
    assert not missing, f"{stem}.cu for {arch}: no .entry for {missing} (PTX has {sorted(entries)})"


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH")
def test_nvcc_fallback_compiles_a_kernel_file(tmp_path):
    # the path the compile test takes where NVRTC is missing must work too
    ptx = _nvcc_ptx(shutil.which("nvcc"), "rotary", "sm_80", tmp_path)
    assert set(kernel_names(SOURCES["rotary"])) <= _entries(ptx)


def test_compile_error_raises_device_error_with_the_compiler_log():
    if _nvrtc_missing():
        pytest.skip(_nvrtc_missing())
    broken = 'extern "C" __global__ void broken(float* x) { x[0] = undefined_thing + 1.0f; }'
    with pytest.raises(DeviceError) as info:
        compile_ptx(broken, "sm_80", name="broken_kernel.cu")
    message = str(info.value)
    assert "undefined_thing" in message and "undefined" in message.replace("undefined_thing", "")
    assert "broken_kernel.cu" in message
    # the same source, fixed, compiles: the error above came from the source, not the setup
    assert ".entry broken" in compile_ptx(broken.replace("undefined_thing", "2.0f"), "sm_80")


def test_missing_nvrtc_names_the_wheel_to_install(monkeypatch):
    def no_library(name, *args, **kwargs):
        raise OSError(f"{name}: cannot open shared object file")
    monkeypatch.setattr(cuda_compile, "_wheel_dir", lambda package, sub: None)
    monkeypatch.setattr(cuda_compile.ctypes.util, "find_library", lambda name: None)
    monkeypatch.setattr(cuda_compile.ctypes, "CDLL", no_library)
    cuda_compile.nvrtc_library.cache_clear()
    try:
        with pytest.raises(DeviceError, match="pip install nvidia-cuda-nvrtc-cu12"):
            compile_ptx('extern "C" __global__ void k() {}', "sm_80")
    finally:
        cuda_compile.nvrtc_library.cache_clear()  # the real library again for the next tests


def test_compile_ptx_rejects_an_unknown_architecture():
    with pytest.raises(DeviceError, match="sm_80"):
        compile_ptx('extern "C" __global__ void k() {}', "ampere")


def test_load_module_names_the_files_when_the_stem_is_unknown():
    with pytest.raises(DeviceError, match="softmax"):
        cuda_compile.load_module("no_such_kernel_file")


# ============================================================================ kernel names
def test_kernel_names_expands_macros_and_skips_what_is_not_a_c_kernel():
    source = r'''
    #include <cuda_fp16.h>
    #define BLOCK 256
    #define PASTE(a, b) a##b
    // extern "C" __global__ void in_a_comment(float* x) {}
    /* extern "C" __global__ void in_a_block_comment() {} */
    #define ONE(T, S)                                                     \
        extern "C" __global__ void __launch_bounds__(BLOCK) scale_##S(T* x, long long n) {}
    #define ALL(S, ...) ONE(float, S) extern "C" __global__ void PASTE(shift_, S)(__VA_ARGS__) {}
    ALL(f32, const float* x, int k)
    ONE(__half, f16)
    template <typename T> __global__ void templated(T* x) {}
    __global__ void mangled(float* x) {}
    extern "C" {
    __global__ void in_a_block(double* y) {}
    }
    #define UNUSED(S) extern "C" __global__ void never_##S() {}
    '''
    assert kernel_names(source) == ["scale_f32", "shift_f32", "scale_f16", "in_a_block"]
    signatures = kernel_signatures(source)
    assert signatures["scale_f16"] == [("__half*", "x"), ("long long", "n")]
    assert signatures["shift_f32"] == [("const float*", "x"), ("int", "k")]
    assert signatures["in_a_block"] == [("double*", "y")]


# the kernels each of these files must define: the contract with the CUDA backend's launchers
EXPECTED = {
    "softmax": ["softmax_forward", "log_softmax_forward", "softmax_backward",
                "log_softmax_backward"],
    "norms": ["layer_norm_forward", "layer_norm_backward", "rms_norm_forward",
              "rms_norm_backward"],
    "rotary": ["rotary_embedding"],
    "swiglu": ["swiglu_forward", "swiglu_backward"],
    "gelu": ["gelu_forward", "gelu_backward"],
    "cross_entropy": ["cross_entropy_forward", "cross_entropy_backward"],
    "embedding": ["embedding_backward"],
    "adamw": ["adamw_step"],
}
SUFFIXES = {"f32": "float", "f16": "__half", "bf16": "__nv_bfloat16"}


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_each_kernel_exists_for_every_storage_dtype(stem):
    source = SOURCES[stem]
    assert source.lstrip().startswith("//"), f"{stem}.cu starts without its header comment"
    signatures = kernel_signatures(source)
    want = {f"{base}_{suffix}" for base in EXPECTED[stem] for suffix in SUFFIXES}
    assert set(signatures) == want
    for name, params in signatures.items():
        storage = SUFFIXES[name.rsplit("_", 1)[1]]
        assert any(storage in kind for kind, _ in params), (name, params)


# ============================================================================ 2. runners
def _check_args(stem: str, name: str, args: tuple) -> None:
    """Every launch argument has the exact type its C parameter needs; optional arrays None."""
    check_launch_args(stem, name, args, nullable=True)


def test_argument_check_catches_a_wrong_scalar_type():
    x = np.zeros((2, 32), np.float32)
    _check_args("softmax", "softmax_forward_f32", (x, x, np.int64(2), np.int64(32)))
    with pytest.raises(AssertionError, match="long long"):
        _check_args("softmax", "softmax_forward_f32", (x, x, np.int32(2), np.int64(32)))
    with pytest.raises(AssertionError, match="float16"):
        _check_args("softmax", "softmax_forward_f16", (x, x, np.int64(2), np.int64(32)))


class GpuRunner:
    """Launches on the current CUDA device through CuPy (``load_module`` / ``get_kernel``)."""

    name = "gpu"

    def __init__(self, cupy):
        self.cupy = cupy

    def to_device(self, a):
        return self.cupy.asarray(np.ascontiguousarray(a))

    def to_host(self, a):
        return self.cupy.asnumpy(a)

    def launch(self, stem, name, grid, block, args, shared_mem=0):
        _check_args(stem, name, args)
        kernel = cuda_compile.get_kernel(stem, name)
        kernel(grid, block, args, shared_mem=shared_mem)
        self.cupy.cuda.Device().synchronize()


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    return build_emulator(tmp_path_factory.mktemp("cuda_emulator"), _check_args, EXPECTED)


@pytest.fixture(scope="session")
def gpu():
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed")
    try:
        available = cupy.cuda.is_available()
    except Exception:  # no driver
        available = False
    if not available:
        pytest.skip("no CUDA device (cupy.cuda.is_available() is False)")
    return GpuRunner(cupy)


@pytest.fixture(params=["emulator", pytest.param("gpu", marks=pytest.mark.gpu)])
def runner(request):
    if torch is None:
        pytest.skip("PyTorch (the reference of the kernel tests) is not installed")
    return request.getfixturevalue(request.param)


DTYPES = {"f32": np.float32, "f16": np.float16, "bf16": "bfloat16"}
TOLERANCE = {"f32": 2e-5, "f16": 4e-3, "bf16": 3e-2}  # relative, and absolute at the data's scale


@pytest.fixture(params=["f32", "f16", "bf16"])
def dtype(request, runner):
    if request.param == "bf16":
        if runner.name == "gpu":
            pytest.skip("CuPy has no bfloat16 dtype (the CUDA backend refuses bfloat16)")
        ml_dtypes = pytest.importorskip("ml_dtypes")
        return "bf16", np.dtype(ml_dtypes.bfloat16)
    return request.param, np.dtype(DTYPES[request.param])


def _data(rng, shape, dt, scale=1.0):
    """Random data in storage dtype ``dt`` and the same values in float64 (the reference's)."""
    stored = (rng.standard_normal(shape) * scale).astype(np.float32).astype(dt)
    return stored, stored.astype(np.float64)


def _close(actual, expected, suffix, scale=1.0, factor=1.0):
    tol = TOLERANCE[suffix] * factor
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, rtol=tol,
                               atol=tol * scale)


def _rows_launch(rows, cols, block=None):
    block = block or min(1024, max(32, -(-cols // 32) * 32))
    return (rows,), (block,)


def _elementwise_launch(n, block=256):
    return (max(1, min(-(-n // block), 65536)),), (block,)


# ============================================================================ softmax
@pytest.mark.parametrize("log", [False, True])
def test_softmax_forward_and_backward(runner, dtype, log):
    suffix, dt = dtype
    rng = np.random.default_rng(0)
    rows, cols = 5, 300  # cols not a multiple of the block: partial strides and warps
    x, x64 = _data(rng, (rows, cols), dt, 3.0)
    g, g64 = _data(rng, (rows, cols), dt)
    xt = torch.tensor(x64, requires_grad=True)
    yt = torch.log_softmax(xt, -1) if log else torch.softmax(xt, -1)
    yt.backward(torch.tensor(g64))
    prefix = "log_softmax" if log else "softmax"

    d_x, d_y = runner.to_device(x), runner.to_device(np.empty_like(x))
    grid, block = _rows_launch(rows, cols, 128)
    runner.launch("softmax", f"{prefix}_forward_{suffix}", grid, block,
                  (d_x, d_y, np.int64(rows), np.int64(cols)))
    y = runner.to_host(d_y)
    _close(y, yt.detach().numpy(), suffix, scale=float(np.abs(yt.detach().numpy()).max()))

    # the backward from the kernel's own output, against autograd's from the exact output
    d_g, d_dx = runner.to_device(g), runner.to_device(np.empty_like(x))
    runner.launch("softmax", f"{prefix}_backward_{suffix}", (2,), (64,),  # 2 blocks loop on rows
                  (d_g, d_y, d_dx, np.int64(rows), np.int64(cols)))
    expected = xt.grad.numpy()
    _close(runner.to_host(d_dx), expected, suffix, scale=float(np.abs(expected).max()),
           factor=4.0)


def test_softmax_in_place_and_one_column(runner):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 1)).astype(np.float32)
    d_x = runner.to_device(x)
    runner.launch("softmax", "softmax_forward_f32", (3,), (32,),
                  (d_x, d_x, np.int64(3), np.int64(1)))
    np.testing.assert_array_equal(runner.to_host(d_x), np.ones((3, 1), np.float32))


# ============================================================================ norms
def _torch_grads(fn, arrays, grad):
    leaves = [None if a is None else torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*leaves)
    out.backward(torch.tensor(grad))
    return out.detach().numpy(), [None if t is None else t.grad.numpy() for t in leaves]


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape, block, grid", [((7, 200), 64, 3), ((4, 300), 32, 4)])
def test_layer_norm_forward_and_backward(runner, dtype, affine, shape, block, grid):
    # (7, 200) with 3 blocks: blocks visit several rows (the register partials of dweight);
    # (4, 300) with 32 threads: columns past 8 * 32 take the atomicAdd path
    suffix, dt = dtype
    rng = np.random.default_rng(2)
    rows, cols = shape
    eps = 1e-5
    x, x64 = _data(rng, shape, dt, 2.0)
    x = (x.astype(np.float32) + np.float32(1.5)).astype(dt)  # a mean far from 0
    x64 = x.astype(np.float64)
    g, g64 = _data(rng, shape, dt)
    w, w64 = _data(rng, (cols,), dt)
    b, b64 = _data(rng, (cols,), dt)
    if not affine:
        w = w64 = b = b64 = None
    y_ref, grads = _torch_grads(
        lambda xt, wt, bt: torch.nn.functional.layer_norm(xt, (cols,), wt, bt, eps),
        [x64, w64, b64], g64)

    dev = runner.to_device
    d_x, d_y = dev(x), dev(np.empty_like(x))
    d_w, d_b = (None, None) if w is None else (dev(w), dev(b))
    d_mean, d_rstd = dev(np.empty(rows, np.float32)), dev(np.empty(rows, np.float32))
    runner.launch("norms", f"layer_norm_forward_{suffix}", (rows,), (block,),
                  (d_x, d_w, d_b, d_y, d_mean, d_rstd, np.int64(rows), np.int64(cols),
                   np.float32(eps)))
    _close(runner.to_host(d_y), y_ref, suffix, scale=float(np.abs(y_ref).max()))
    np.testing.assert_allclose(runner.to_host(d_mean), x64.mean(-1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(runner.to_host(d_rstd), 1 / np.sqrt(x64.var(-1) + eps), rtol=1e-5)

    d_g, d_dx = dev(g), dev(np.empty_like(x))
    d_dw, d_db = (dev(np.zeros(cols, np.float32)), dev(np.zeros(cols, np.float32))) if affine \
        else (None, None)
    runner.launch("norms", f"layer_norm_backward_{suffix}", (grid,), (block,),
                  (d_g, d_x, d_w, d_mean, d_rstd, d_dx, d_dw, d_db, np.int64(rows),
                   np.int64(cols)))
    for actual, expected in zip([d_dx, d_dw, d_db], grads):
        if expected is not None:
            _close(runner.to_host(actual), expected, suffix, scale=float(np.abs(expected).max()),
                   factor=4.0)


@pytest.mark.parametrize("with_weight", [True, False])
@pytest.mark.parametrize("shape, block, grid", [((7, 200), 64, 3), ((4, 300), 32, 4)])
def test_rms_norm_forward_and_backward(runner, dtype, with_weight, shape, block, grid):
    suffix, dt = dtype
    rng = np.random.default_rng(3)
    rows, cols = shape
    eps = 1e-6
    x, x64 = _data(rng, shape, dt, 2.0)
    g, g64 = _data(rng, shape, dt)
    w, w64 = _data(rng, (cols,), dt) if with_weight else (None, None)

    def rms(xt, wt):
        y = xt * torch.rsqrt((xt * xt).mean(-1, keepdim=True) + eps)
        return y if wt is None else y * wt

    y_ref, grads = _torch_grads(rms, [x64, w64], g64)
    dev = runner.to_device
    d_x, d_y, d_w = dev(x), dev(np.empty_like(x)), None if w is None else dev(w)
    d_rstd = dev(np.empty(rows, np.float32))
    runner.launch("norms", f"rms_norm_forward_{suffix}", (rows,), (block,),
                  (d_x, d_w, d_y, d_rstd, np.int64(rows), np.int64(cols), np.float32(eps)))
    _close(runner.to_host(d_y), y_ref, suffix, scale=float(np.abs(y_ref).max()))
    np.testing.assert_allclose(runner.to_host(d_rstd), 1 / np.sqrt((x64 * x64).mean(-1) + eps),
                               rtol=1e-5)

    d_g, d_dx = dev(g), dev(np.empty_like(x))
    d_dw = dev(np.zeros(cols, np.float32)) if with_weight else None
    runner.launch("norms", f"rms_norm_backward_{suffix}", (grid,), (block,),
                  (d_g, d_x, d_w, d_rstd, d_dx, d_dw, np.int64(rows), np.int64(cols)))
    for actual, expected in zip([d_dx, d_dw], grads):
        if expected is not None:
            _close(runner.to_host(actual), expected, suffix, scale=float(np.abs(expected).max()),
                   factor=4.0)


# ============================================================================ rotary
def _rotary_tables(rng, batch, seq, head_dim, per_batch):
    half = head_dim // 2
    inv_freq = 1.0 / (10000 ** (np.arange(half) / half))
    positions = (rng.integers(0, 50, (batch, seq)) if per_batch
                 else np.broadcast_to(np.arange(seq), (batch, seq)))
    angles = positions[..., None] * inv_freq
    angles = np.concatenate([angles, angles], -1)  # (batch, seq, head_dim), equal halves
    cos, sin = np.cos(angles), np.sin(angles)
    return (cos, sin) if per_batch else (cos[:1], sin[:1])


def _rotate_half(x):
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], -1)


@pytest.mark.parametrize("per_batch", [False, True])
@pytest.mark.parametrize("sin_folded", [0, 1])
def test_rotary_embedding_forward_and_backward(runner, dtype, per_batch, sin_folded):
    suffix, dt = dtype
    rng = np.random.default_rng(4)
    batch, heads, seq, head_dim = 2, 3, 5, 16
    x, x64 = _data(rng, (batch, heads, seq, head_dim), dt)
    g, g64 = _data(rng, x.shape, dt)
    cos64, sin64 = _rotary_tables(rng, batch, seq, head_dim, per_batch)
    cos, sin = cos64.astype(np.float32).astype(dt), sin64.astype(np.float32).astype(dt)
    cos64, sin64 = cos.astype(np.float64), sin.astype(np.float64)  # the values the kernel sees
    table_sin = sin.copy()
    if sin_folded:  # gradient's model table: rotate_half's sign folded into the first half
        table_sin[..., : head_dim // 2] = -table_sin[..., : head_dim // 2]
    stride = np.int64(seq * head_dim if per_batch else 0)
    c, s = cos64[:, None], sin64[:, None]  # broadcast over heads
    forward = x64 * c + _rotate_half(x64) * s

    dev = runner.to_device
    d_cos, d_sin = dev(np.ascontiguousarray(cos)), dev(np.ascontiguousarray(table_sin))
    sizes = tuple(np.int64(v) for v in (batch, heads, seq, head_dim))
    pairs = batch * heads * seq * head_dim // 2
    d_x, d_out = dev(x), dev(np.empty_like(x))
    assert 2 * 64 < pairs  # two blocks of 64 threads: the grid-stride loop goes round
    runner.launch("rotary", f"rotary_embedding_{suffix}", (2,), (64,),
                  (d_x, d_cos, d_sin, d_out, *sizes, stride, np.int32(sin_folded), np.int32(0)))
    _close(runner.to_host(d_out), forward, suffix, scale=2.0)

    # the backward is the transpose of the forward (and, for equal halves, the forward with -sin)
    d_g = dev(g)
    runner.launch("rotary", f"rotary_embedding_{suffix}", _elementwise_launch(pairs)[0], (64,),
                  (d_g, d_cos, d_sin, d_g, *sizes, stride, np.int32(sin_folded), np.int32(1)))
    dx = runner.to_host(d_g).astype(np.float64)  # in place
    expected = g64 * c - _rotate_half(g64) * s
    _close(dx, expected, suffix, scale=2.0)
    if suffix == "f32":  # <forward(x), g> == <x, backward(g)>
        assert np.isclose((forward * g64).sum(), (x64 * dx).sum(), rtol=1e-5, atol=1e-4)


# ============================================================================ swiglu / gelu
def test_swiglu_forward_and_backward(runner, dtype):
    suffix, dt = dtype
    rng = np.random.default_rng(5)
    n = 1000
    gate, gate64 = _data(rng, (n,), dt, 3.0)
    up, up64 = _data(rng, (n,), dt)
    grad, grad64 = _data(rng, (n,), dt)
    y_ref, (dgate_ref, dup_ref) = _torch_grads(
        lambda a, b: torch.nn.functional.silu(a) * b, [gate64, up64], grad64)
    dev = runner.to_device
    d_gate, d_up, d_out = dev(gate), dev(up), dev(np.empty_like(gate))
    grid, block = _elementwise_launch(n, 128)
    runner.launch("swiglu", f"swiglu_forward_{suffix}", (3,), block,  # grid-stride: 3 x 128 < n
                  (d_gate, d_up, d_out, np.int64(n)))
    _close(runner.to_host(d_out), y_ref, suffix, scale=float(np.abs(y_ref).max()))
    d_grad, d_dgate, d_dup = dev(grad), dev(np.empty_like(gate)), dev(np.empty_like(gate))
    runner.launch("swiglu", f"swiglu_backward_{suffix}", grid, block,
                  (d_grad, d_gate, d_up, d_dgate, d_dup, np.int64(n)))
    _close(runner.to_host(d_dgate), dgate_ref, suffix, scale=float(np.abs(dgate_ref).max()))
    _close(runner.to_host(d_dup), dup_ref, suffix, scale=float(np.abs(dup_ref).max()))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_forward_and_backward(runner, dtype, approximate):
    suffix, dt = dtype
    rng = np.random.default_rng(6)
    n = 777
    x, x64 = _data(rng, (n,), dt, 3.0)
    g, g64 = _data(rng, (n,), dt)
    y_ref, (dx_ref,) = _torch_grads(
        lambda t: torch.nn.functional.gelu(t, approximate=approximate), [x64], g64)
    flag = np.int32(approximate == "tanh")
    dev = runner.to_device
    d_x, d_y = dev(x), dev(np.empty_like(x))
    grid, block = _elementwise_launch(n)
    runner.launch("gelu", f"gelu_forward_{suffix}", grid, block, (d_x, d_y, np.int64(n), flag))
    _close(runner.to_host(d_y), y_ref, suffix, scale=float(np.abs(y_ref).max()))
    d_g, d_dx = dev(g), dev(np.empty_like(x))
    runner.launch("gelu", f"gelu_backward_{suffix}", (1,), (64,),
                  (d_g, d_x, d_dx, np.int64(n), flag))
    _close(runner.to_host(d_dx), dx_ref, suffix, scale=float(np.abs(dx_ref).max()))


# ============================================================================ cross-entropy
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_forward_and_backward(runner, dtype, label_smoothing):
    suffix, dt = dtype
    rng = np.random.default_rng(7)
    rows, classes, ignore = 6, 333, -100
    logits, logits64 = _data(rng, (rows, classes), dt, 4.0)
    targets = rng.integers(0, classes, rows).astype(np.int64)
    targets[2] = ignore
    scale = rng.uniform(0.5, 2.0, rows).astype(np.float32)

    lt = torch.tensor(logits64, requires_grad=True)
    loss_t = torch.nn.functional.cross_entropy(lt, torch.tensor(targets), ignore_index=ignore,
                                               reduction="none", label_smoothing=label_smoothing)
    (loss_t * torch.tensor(scale.astype(np.float64))).sum().backward()
    lse_ref = torch.logsumexp(torch.tensor(logits64), -1).numpy()

    dev = runner.to_device
    d_logits, d_targets = dev(logits), dev(targets)
    d_loss, d_lse = dev(np.empty(rows, np.float32)), dev(np.empty(rows, np.float32))
    sizes = (np.int64(rows), np.int64(classes), np.int64(ignore), np.float32(label_smoothing))
    grid, block = _rows_launch(rows, classes, 128)
    runner.launch("cross_entropy", f"cross_entropy_forward_{suffix}", grid, block,
                  (d_logits, d_targets, d_loss, d_lse, *sizes))
    loss = runner.to_host(d_loss)
    np.testing.assert_allclose(loss, loss_t.detach().numpy(), rtol=1e-5, atol=1e-5)
    assert loss[2] == 0
    np.testing.assert_allclose(runner.to_host(d_lse), lse_ref, rtol=1e-5)

    d_scale, d_dlogits = dev(scale), dev(np.empty_like(logits))
    runner.launch("cross_entropy", f"cross_entropy_backward_{suffix}", (4,), (64,),
                  (d_logits, d_targets, d_lse, d_scale, d_dlogits, *sizes))
    expected = lt.grad.numpy()
    dlogits = runner.to_host(d_dlogits)
    _close(dlogits, expected, suffix, scale=float(np.abs(expected).max()))
    assert not np.asarray(dlogits[2], np.float64).any()  # the ignored row

    # scale NULL means ones; in place over the logits
    runner.launch("cross_entropy", f"cross_entropy_backward_{suffix}", grid, block,
                  (d_logits, d_targets, d_lse, None, d_logits, *sizes))
    unscaled = expected / scale[:, None]
    _close(runner.to_host(d_logits), unscaled, suffix, scale=float(np.abs(unscaled).max()))


def test_cross_entropy_invalid_target_gives_nan(runner):
    logits = np.zeros((2, 40), np.float32)
    targets = np.array([3, 40], np.int64)  # 40 is out of range
    dev = runner.to_device
    d_loss, d_lse, d_grad = (dev(np.empty(2, np.float32)), dev(np.empty(2, np.float32)),
                             dev(np.empty_like(logits)))
    sizes = (np.int64(2), np.int64(40), np.int64(-100), np.float32(0))
    d_logits, d_targets = dev(logits), dev(targets)
    runner.launch("cross_entropy", "cross_entropy_forward_f32", (2,), (64,),
                  (d_logits, d_targets, d_loss, d_lse, *sizes))
    loss = runner.to_host(d_loss)
    assert np.isclose(loss[0], math.log(40)) and np.isnan(loss[1])
    runner.launch("cross_entropy", "cross_entropy_backward_f32", (2,), (64,),
                  (d_logits, d_targets, d_lse, None, d_grad, *sizes))
    grad = runner.to_host(d_grad)
    assert np.isfinite(grad[0]).all() and np.isnan(grad[1]).all()


# ============================================================================ embedding
def test_embedding_backward(runner, dtype):
    suffix, dt = dtype
    rng = np.random.default_rng(8)
    num, dim, padding = 10, 48, 3
    ids = rng.integers(0, num, (4, 9)).astype(np.int64)
    ids[0, :4] = 7                      # repeated ids add up
    ids[1, 0] = padding                 # no gradient for the padding row
    ids[1, 1], ids[1, 2] = -1, num      # out of range: skipped
    grad, grad64 = _data(rng, ids.shape + (dim,), dt)
    expected = np.zeros((num, dim))
    keep = (ids >= 0) & (ids < num) & (ids != padding)
    np.add.at(expected, ids[keep], grad64[keep])

    dev = runner.to_device
    d_weight = dev(np.full((num, dim), 0.5, np.float32))  # adds to what is there
    grid, block = _elementwise_launch(ids.size * dim, 128)
    runner.launch("embedding", f"embedding_backward_{suffix}", grid, block,
                  (dev(ids), dev(grad), d_weight, np.int64(ids.size), np.int64(dim),
                   np.int64(num), np.int64(padding)))
    np.testing.assert_allclose(runner.to_host(d_weight), expected + 0.5, rtol=1e-5, atol=1e-5)


# ============================================================================ Adam / AdamW
@pytest.mark.parametrize("decoupled, weight_decay, amsgrad, maximize, beta1", [
    (1, 0.1, False, False, 0.9),      # AdamW
    (0, 0.01, True, False, 0.9),      # Adam with L2 and amsgrad
    (1, 0.0, False, True, 0.3),       # maximize; a lerp weight above one half
])
def test_adamw_step_matches_torch(runner, dtype, decoupled, weight_decay, amsgrad, maximize,
                                  beta1):
    suffix, dt = dtype
    rng = np.random.default_rng(9)
    n, lr, beta2, eps, steps = 1000, 1e-2, 0.999, 1e-8, 3
    param = rng.standard_normal(n).astype(np.float32).astype(dt)
    grads = [rng.standard_normal(n).astype(np.float32).astype(dt) for _ in range(steps)]

    # PyTorch's single-tensor step on float32 copies of the parameters
    p_t = torch.tensor(param.astype(np.float32), requires_grad=True)
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    opt = cls([p_t], lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay,
              amsgrad=amsgrad, maximize=maximize, foreach=False)

    dev = runner.to_device
    d_p, d_m, d_v = dev(param), dev(np.zeros(n, np.float32)), dev(np.zeros(n, np.float32))
    d_vmax = dev(np.zeros(n, np.float32)) if amsgrad else None
    for step in range(1, steps + 1):
        g = grads[step - 1]
        p_t.grad = torch.tensor(g.astype(np.float32))
        opt.step()
        if suffix != "f32":  # the reference keeps float32 parameters; the kernel rounds each step
            with torch.no_grad():
                p_t.copy_(torch.tensor(p_t.detach().numpy().astype(dt).astype(np.float32)))
        grid, block = _elementwise_launch(n, 128)
        runner.launch("adamw", f"adamw_step_{suffix}", grid, block,
                      (d_p, dev(g), d_m, d_v, d_vmax, np.int64(n), np.float64(lr),
                       np.float64(beta1), np.float64(beta2), np.float64(eps),
                       np.float64(weight_decay), np.float64(1 - beta1 ** step),
                       np.float64(1 - beta2 ** step), np.int32(decoupled), np.int32(maximize)))
    state = opt.state[p_t]
    p = runner.to_host(d_p).astype(np.float32)
    if suffix == "f32":
        # PyTorch's vectorised CPU loops may fuse multiply-adds: equal to an ulp or two of the
        # largest element (the CPU-kernel test below checks the exact bits)
        pairs = [(p, p_t.detach()), (runner.to_host(d_m), state["exp_avg"]),
                 (runner.to_host(d_v), state["exp_avg_sq"])]
        if amsgrad:
            pairs.append((runner.to_host(d_vmax), state["max_exp_avg_sq"]))
        for actual, expected in pairs:
            expected = expected.numpy()
            np.testing.assert_allclose(actual, expected, rtol=1e-6,
                                       atol=1e-6 * float(np.abs(expected).max()))
    else:
        _close(p, p_t.detach().numpy(), suffix, scale=float(np.abs(param.astype(np.float32)).max()))


def test_adamw_step_gives_the_bits_of_the_cpu_kernel(runner):
    # same float32 operations in the same order as gradient's CPU step: identical results
    cpu_kernels = pytest.importorskip("gradient.backends.cpu_kernels")
    rng = np.random.default_rng(10)
    n = 513
    # parameters as small as the update, so that every bit of the update shows in the result
    p = (rng.standard_normal(n) * 1e-3).astype(np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    m, v = (rng.standard_normal(n) * 0.1).astype(np.float32), rng.random(n).astype(np.float32)
    vmax = v + rng.random(n).astype(np.float32) * (rng.random(n) < 0.5)
    hyper = dict(lr=3e-3, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1, maximize=False)
    for decoupled in (True, False):
        ref = [a.copy() for a in (p, g, m, v, vmax)]
        assert cpu_kernels.adam_step(*ref, decoupled_weight_decay=decoupled, step=4, **hyper)
        dev = runner.to_device
        d_p, d_m, d_v, d_vmax = dev(p), dev(m), dev(v), dev(vmax)
        runner.launch("adamw", "adamw_step_f32", (2,), (128,),
                      (d_p, dev(g), d_m, d_v, d_vmax, np.int64(n), np.float64(hyper["lr"]),
                       np.float64(0.9), np.float64(0.95), np.float64(1e-8), np.float64(0.1),
                       np.float64(1 - 0.9 ** 4), np.float64(1 - 0.95 ** 4),
                       np.int32(decoupled), np.int32(0)))
        for d_a, a in zip((d_p, d_m, d_v, d_vmax), (ref[0], ref[2], ref[3], ref[4])):
            np.testing.assert_array_equal(runner.to_host(d_a), a)


# ---------------------------------------------------------------------- the backend's launchers
@pytest.fixture
def emulated_launchers(emulator, monkeypatch):
    """gradient.backends.cuda.fused with NumPy standing in for CuPy and every launch run by the
    emulator: checks the launchers' shapes, grids and argument types against the kernels."""
    from gradient.backends.cuda import flash, fused
    for module in (fused, flash):
        monkeypatch.setattr(module, "_cupy", lambda: np)
        monkeypatch.setattr(module, "get_kernel", lambda stem, name: (
            lambda grid, block, args, shared_mem=0: emulator.launch(stem, name, grid, block,
                                                                   args)))
    return fused


@pytest.fixture
def emulated_device(emulated_launchers, monkeypatch):
    """``make(name, kernels)``: register device ``name`` whose arrays live in host memory and
    whose fused kernels ``kernels`` are the CUDA launchers, run by the emulator (the ops path of
    a GPU, on this machine). Returns ``(backend, calls)``; ``calls`` lists the kernels used."""
    import functools

    from gradient.backends import register_backend
    from gradient.backends.numpy_backend import ArrayBackend

    def make(name: str, kernels: tuple):
        calls = []
        backend = ArrayBackend(np, name)
        register_backend(name, backend)
        launchers = {}
        for kernel in kernels:
            launcher = getattr(emulated_launchers, kernel)
            # wraps: keeps the launcher's attributes (quant_matmul.types)
            launchers[kernel] = functools.wraps(launcher)(
                lambda *a, _l=launcher, _k=kernel: calls.append(_k) or _l(*a))
        quantized = {k: f for k, f in launchers.items() if hasattr(f, "types")}
        device_kernels(monkeypatch, name, quantized)          # they check their inputs
        device_kernels(monkeypatch, name, {k: f for k, f in launchers.items()
                                           if k not in quantized}, dtypes=(np.float32,))
        return backend, calls
    return make


def test_cuda_launchers_match_the_cpu_kernels(emulated_launchers):
    from gradient.backends import cpu_attention
    from gradient.backends import cpu_kernels as cpu
    cuda = emulated_launchers
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 40)).astype(np.float32)
    w, b, g = (rng.standard_normal(n).astype(np.float32) for n in (40, 40, 40))
    grad = rng.standard_normal((6, 40)).astype(np.float32)

    def close(a, b, tol=2e-5):
        for u, v in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
            if u is None or v is None:
                assert u is None and v is None
                continue
            np.testing.assert_allclose(np.asarray(u, np.float64), np.asarray(v, np.float64),
                                       rtol=tol, atol=tol)

    def softmax_rows(a):
        e = np.exp(a - a.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)
    p = softmax_rows(x)
    close(cuda.softmax(x), p)
    close(cuda.log_softmax(x), np.log(p), tol=1e-5)
    close(cuda.softmax_backward(grad, p), p * (grad - (grad * p).sum(-1, keepdims=True)))
    close(cuda.log_softmax_backward(grad, np.log(p)), grad - p * grad.sum(-1, keepdims=True))
    for approximate in ("tanh", "none"):
        close(cuda.gelu(x, approximate), cpu.gelu(x, approximate))
        close(cuda.gelu_backward(grad, x, approximate), cpu.gelu_backward(grad, x, approximate))
    y, mean, rstd = cuda.layer_norm(x, w, b, 1e-5)
    close((y, mean, rstd), cpu.layer_norm(x, w, b, 1e-5))
    close(cuda.layer_norm_backward(grad, x, mean, rstd, w),
          cpu.layer_norm_backward(grad, x, mean.astype(np.float32), rstd.astype(np.float32), w),
          tol=1e-4)
    for weight in (w, None):
        y, rstd = cuda.rms_norm(x, weight, 1e-6)
        close((y, rstd), cpu.rms_norm(x, weight, 1e-6))
        close(cuda.rms_norm_backward(grad, x, rstd, weight),
              cpu.rms_norm_backward(grad, x, rstd, weight), tol=1e-4)
    q, k, v, go = (rng.standard_normal((2, 3, 5, 4)).astype(np.float32) for _ in range(4))
    for causal in (True, False):
        cpu_out, cpu_probs = cpu_attention.attention_forward(q, k, v, 0.5, causal)
        cpu_grads = cpu_attention.attention_backward(go, q, k, v, cpu_out, cpu_probs, 0.5, causal)
        for head_dim in (4, 160):   # flash kernels up to 128, the scores path beyond
            pad = [(0, 0)] * 3 + [(0, head_dim - 4)]   # zero dims change nothing
            qp, kp, vp, gp = (np.pad(a, pad) for a in (q, k, v, go))
            out, saved = cuda.attention_forward(qp, kp, vp, 0.5, causal)
            assert saved[0] == ("flash" if head_dim <= 128 else "scores")
            close(out[..., :4], cpu_out)
            grads = cuda.attention_backward(gp, qp, kp, vp, out, saved, 0.5, causal)
            close(tuple(g[..., :4] for g in grads), cpu_grads)
    states = []
    for impl in (cuda, cpu):
        p, m, s = x.copy(), np.zeros_like(x), np.zeros_like(x)
        for step in (1, 2, 3):
            assert impl.adam_step(p, grad, m, s, None, lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8,
                                  weight_decay=0.1, decoupled_weight_decay=True, maximize=False,
                                  step=step)
        states.append((p, m, s))
    close(states[0], states[1], tol=1e-6)
    table = [np.zeros((7, 3), np.float32) for _ in range(2)]
    ids = np.array([[1, 4, 1], [6, 0, 4]])
    rows = rng.standard_normal((2, 3, 3)).astype(np.float32)
    assert cuda.index_add_rows(table[0], ids, rows) and cpu.index_add_rows(table[1], ids, rows)
    close(table[0], table[1], tol=1e-6)
    # negative ids count from the end; ids out of range are skipped (not read back to check)
    before = table[0].copy()
    assert cuda.index_add_rows(table[0], np.array([-1, 7, -8]), rows[0])
    expected = before.copy()
    expected[6] += rows[0, 0]
    close(table[0], expected, tol=1e-6)
    assert cuda.gelu(x.astype(np.float64), "tanh") is None                 # float64: declined


def test_quantized_linear_on_a_device_reads_its_blocks_with_the_kernel(emulated_device,
                                                                       monkeypatch):
    """QuantizedLinear on a non-CPU device: the GGML blocks are uploaded once and read by the
    mat-vec kernel (here: quant_matvec.cu on the emulator, through the CUDA launcher, on a
    device whose arrays live in host memory)."""
    gguf = pytest.importorskip("gguf")
    import gradient
    from gradient.quant import QuantizedLinear

    device, calls = emulated_device("emulated_gpu", ("quant_matmul",))
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((10, 64)).astype(np.float32)
    uploads = []
    from_numpy = device.from_numpy
    monkeypatch.setattr(device, "from_numpy", lambda a: uploads.append(a.dtype) or from_numpy(a))
    for qtype in ("Q8_0", "Q4_1", "Q5_0"):
        blocks = gguf.quants.quantize(weight, gguf.GGMLQuantizationType[qtype])
        layer = QuantizedLinear.from_blocks(blocks, qtype, 64, 10)
        x = rng.standard_normal((3, 64)).astype(np.float32)
        expected = x @ gguf.quants.dequantize(blocks, gguf.GGMLQuantizationType[qtype]).T
        for _ in range(2):
            y = layer(gradient.tensor(x).to("emulated_gpu"))
            assert y.device.type == "emulated_gpu"
            np.testing.assert_allclose(y.numpy(), expected, rtol=1e-4, atol=1e-4)
    assert uploads.count(np.uint8) == 3   # each layer's blocks went up once
    assert calls == ["quant_matmul"] * 6


@pytest.mark.parametrize("qtype", ["Q2_K", "Q3_K", "Q5_K"])
def test_quantized_linear_on_a_device_reads_k_quant_blocks_with_the_kernel(emulated_device, qtype):
    """The K types gguf cannot quantize: random super-blocks with sane f16 scales, two per row."""
    gguf = pytest.importorskip("gguf")
    import gradient
    from gradient.quant import QuantizedLinear

    device, calls = emulated_device("emulated_gpu_k", ("quant_matmul",))
    rng = np.random.default_rng(1)
    t = gguf.GGMLQuantizationType[qtype]
    n_bytes = gguf.quants.GGML_QUANT_SIZES[t][1]
    raw = rng.integers(0, 256, (5 * 2, n_bytes), dtype=np.uint8)
    # where each type keeps its f16 d (and dmin): random bits there would give inf and NaN
    for start in {"Q2_K": (80, 82), "Q3_K": (108,), "Q5_K": (0, 2)}[qtype]:
        raw[:, start:start + 2] = rng.uniform(0.001, 0.05, (10, 1)).astype(np.float16).view(np.uint8)
    blocks = raw.reshape(5, 2 * n_bytes)
    layer = QuantizedLinear.from_blocks(blocks, qtype, 512, 5)
    x = rng.standard_normal((2, 512)).astype(np.float32)
    expected = x.astype(np.float64) @ gguf.quants.dequantize(blocks, t).astype(np.float64).T
    y = layer(gradient.tensor(x).to("emulated_gpu_k"))
    assert y.device.type == "emulated_gpu_k"
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-4, atol=1e-3)
    assert calls == ["quant_matmul"]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_on_a_device_uses_the_kernels(emulated_device, reduction):
    """F.cross_entropy on a device whose fused kernels are the CUDA launchers (run by the
    emulator, arrays in host memory): loss and gradient equal the CPU's, ignored rows included."""
    import gradient
    import gradient.nn.functional as F
    _, calls = emulated_device("emulated_ce", ("cross_entropy", "cross_entropy_backward"))
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((6, 37)).astype(np.float32) * 3
    target = np.array([3, -100, 36, 0, 5, -100])
    upstream = rng.standard_normal(6).astype(np.float32) if reduction == "none" else None
    results = []
    for device in ("cpu", "emulated_ce"):
        x = gradient.tensor(logits, device=device, requires_grad=True)
        loss = F.cross_entropy(x, gradient.tensor(target, device=device), reduction=reduction)
        g = None if upstream is None else gradient.tensor(upstream, device=device)
        (graph_grad,) = gradient.autograd.grad(loss, (x,), g, create_graph=True, retain_graph=True)
        loss.backward(g)
        results.append((loss.detach().numpy(), x.grad.numpy(), graph_grad.detach().numpy()))
    # the first backward built a graph (the composition, recomputed from the logits); the
    # second did not (the kernel)
    assert calls == ["cross_entropy", "cross_entropy_backward"]
    for ours, ref in zip(*results):
        np.testing.assert_allclose(ours, ref, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("heads, kv_heads, length", [(4, 2, 37), (3, 3, 1), (2, 1, 70)])
def test_decode_attention_on_a_device_reads_the_kv_cache_in_place(emulated_device, heads,
                                                                   kv_heads, length):
    """A one-token F.scaled_dot_product_attention against keys/values that are the first
    ``length`` positions of a cache buffer runs the decode-attention kernel on such a device."""
    import gradient
    import gradient.nn.functional as F
    _, calls = emulated_device("emulated_decode", ("decode_attention",))
    rng = np.random.default_rng(1)
    q = rng.standard_normal((2, heads, 1, 16)).astype(np.float32)
    cache = rng.standard_normal((2, 2, kv_heads, 80, 16)).astype(np.float32)  # keys, values
    results = []
    for device in ("cpu", "emulated_decode"):
        buffer = gradient.tensor(cache, device=device)
        k, v = buffer[0, :, :, :length], buffer[1, :, :, :length]
        results.append(F.scaled_dot_product_attention(gradient.tensor(q, device=device), k, v,
                                                      enable_gqa=True).numpy())
    assert calls == ["decode_attention"]
    np.testing.assert_allclose(results[1], results[0], rtol=2e-5, atol=2e-6)
