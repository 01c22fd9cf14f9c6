"""The CUDA kernels of ``kernels/decode_attention.cu`` and ``kernels/quant_matvec.cu``.

On every machine: both files compile with ``nvcc`` for sm_80 and sm_90 (skipped without nvcc)
and define every kernel the backend launches. Then, through two runners that take the same
launches (the ``runner`` fixture): the quantized mat-vecs against ``gguf.quants.dequantize(...)
@ x``, and decode attention against a float64 NumPy softmax over the cache (grouped-query heads,
sliding window, per-sequence lengths that are not a multiple of the 32-key tile, float32 /
float16 / bfloat16). The runners:

* ``emulator``: the ``.cu`` file built by the host C++ compiler with the shim of
  ``cuda_emulator.py`` (each CUDA thread a coroutine): the kernels' arithmetic, warp reductions
  and 2-D launches are checked on any Linux machine with g++. A few sizes are smaller there
  (every CUDA thread is emulated); the 32768-key attention runs on 4096 keys.
* ``gpu`` (marked ``gpu``, skipped without CuPy or a device): CuPy on a real device, full sizes.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest


from .cuda_emulator import C_POINTEES, EmulatorRunner, build_emulator, check_launch_args

KERNELS = Path(__file__).resolve().parents[2] / "gradient" / "backends" / "cuda" / "kernels"

EXPECTED = {
    "decode_attention": ["decode_attention_f32", "decode_attention_f16", "decode_attention_bf16"],
    "grouped_matvec": [f"{kind}_{s}" for kind in ("gmv_int4", "gmv_int4_zp", "gmv_int4_x4",
                                                  "gmv_int4_zp_x4", "gmv_int8", "gdq_int4",
                                                  "gdq_int4_zp", "gdq_int8")
                       for s in ("f16", "f32")],
    "quant_matvec": ["matvec_q8_0", "matvec_q4_0", "matvec_q4_1", "matvec_q5_0", "matvec_q5_1",
                     "matvec_q2_k", "matvec_q3_k", "matvec_q4_k", "matvec_q5_k", "matvec_q6_k"],
}


def _cupy():
    """cupy when it is installed and sees a CUDA device, else None."""
    try:
        import cupy
    except ImportError:
        return None
    try:
        return cupy if cupy.cuda.is_available() else None
    except Exception:  # a broken driver install: no device for these tests
        return None


cp = _cupy()


# ---------------------------------------------------------------------- every machine: nvcc
def _nvcc_ptx(stem: str, arch: str, out_dir: Path) -> str:
    """PTX of kernels/<stem>.cu for arch, from nvcc."""
    out = out_dir / f"{stem}_{arch}.ptx"
    result = subprocess.run(["nvcc", "-ptx", f"-arch={arch}", str(KERNELS / f"{stem}.cu"),
                             "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"nvcc -arch={arch} {stem}.cu failed:\n{result.stderr}"
    return out.read_text()


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_kernels_compile_with_nvcc(stem, arch, tmp_path):
    ptx = _nvcc_ptx(stem, arch, tmp_path)
    entries = sorted(line.split(".entry", 1)[1].strip().rstrip("(").strip()
                     for line in ptx.splitlines() if ".entry " in line)
    assert entries == sorted(EXPECTED[stem])
    # No per-thread arrays in local memory: the transposing reduction of decode attention and the
    # per-vector accumulators of the mat-vecs must be fully unrolled into registers (a kernel
    # that misses this is still right, but several times slower).
    assert ".local" not in ptx


# ---------------------------------------------------------------------- runners
_modules: dict = {}


def _kernel(stem: str, name: str):
    """The kernel, through the backend's loader when it is importable, else compiled here."""
    try:
        from gradient.backends.cuda.compile import get_kernel
    except ImportError:
        get_kernel = None
    if get_kernel is not None:
        return get_kernel(stem, name)
    if stem not in _modules:
        options = ("--std=c++17",)
        try:
            import nvidia.cuda_runtime as runtime
            options += tuple(f"-I{Path(p) / 'include'}" for p in runtime.__path__)
        except ImportError:
            pass
        _modules[stem] = cp.RawModule(code=(KERNELS / f"{stem}.cu").read_text(), options=options)
    return _modules[stem].get_function(name)


# CuPy has no bfloat16: the kernels read the same 16-bit patterns from uint16
_POINTEES = {**C_POINTEES, "__nv_bfloat16": ("bfloat16", "uint16")}


def _check_args(stem: str, name: str, args: tuple) -> None:
    """Every launch argument has the exact type its C parameter needs."""
    check_launch_args(stem, name, args, pointees=_POINTEES)


class GpuRunner:
    """Launches on the current CUDA device through CuPy."""

    name = "gpu"

    def to_device(self, a):
        return cp.asarray(np.ascontiguousarray(a))

    def to_host(self, a):
        return cp.asnumpy(a)

    def launch(self, stem, name, grid, block, args, shared_mem=0):
        _check_args(stem, name, args)
        _kernel(stem, name)(grid, block, args, shared_mem=shared_mem)
        cp.cuda.Device().synchronize()


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    return build_emulator(tmp_path_factory.mktemp("cuda_emulator_qa"), _check_args,
                          EXPECTED)


@pytest.fixture(scope="module")
def gpu():
    if cp is None:
        pytest.skip("no CuPy or no CUDA device")
    return GpuRunner()


@pytest.fixture(params=["emulator", pytest.param("gpu", marks=pytest.mark.gpu)])
def runner(request):
    return request.getfixturevalue(request.param)


# A kernel that records what each thread sees of the launch geometry, for the emulator's tests.
_GEOMETRY = r"""
extern "C" __global__ void geometry(int* seen, int* shuffled) {
    __shared__ int ids[1024];
    const int n = blockDim.x * blockDim.y * blockDim.z;
    const int t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    const int b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    int* s = seen + 12 * (b * n + t);
    s[0] = threadIdx.x; s[1] = threadIdx.y; s[2] = threadIdx.z;
    s[3] = blockIdx.x; s[4] = blockIdx.y; s[5] = blockIdx.z;
    s[6] = blockDim.x; s[7] = blockDim.y; s[8] = blockDim.z;
    s[9] = gridDim.x; s[10] = gridDim.y; s[11] = gridDim.z;
    int* r = shuffled + 3 * (b * n + t);
    r[0] = __shfl_xor_sync(0xffffffffu, t, 5);
    r[1] = __shfl_sync(0xffffffffu, 1000 * b + t, 31 - (t & 31));
    ids[t] = t;
    __syncthreads();  // the whole block: another warp's entry is there
    r[2] = ids[n - 1 - t];
}
"""


@pytest.mark.parametrize("grid, block", [((3,), (64,)), ((2, 3), (32, 3)), ((2, 3, 2), (8, 4, 2)),
                                         ((1, 1, 2), (4, 4, 6))])
def test_emulator_launch_geometry(emulator, grid, block):
    # threadIdx / blockIdx / blockDim / gridDim in x, y, z; warps of 32 consecutive threads in
    # x-fastest order; __syncthreads over the whole block (96 and 64 threads: several warps)
    runner = EmulatorRunner(emulator.cxx, emulator.tmp_dir, lambda *args: None,
                            sources={"geometry": _GEOMETRY})
    g, k = np.array(grid + (1,) * (3 - len(grid))), np.array(block + (1,) * (3 - len(block)))
    n, blocks = int(k.prod()), int(g.prod())
    seen = runner.to_device(np.full((blocks, n, 12), -1, np.int32))
    shuffled = runner.to_device(np.full((blocks, n, 3), -1, np.int32))
    runner.launch("geometry", "geometry", grid, block, (seen, shuffled))
    # the expected values, thread t of block b numbered x fastest, then y, then z
    t, b = np.arange(n), np.arange(blocks)
    thread = np.stack([t % k[0], t // k[0] % k[1], t // (k[0] * k[1])], -1)
    block_index = np.stack([b % g[0], b // g[0] % g[1], b // (g[0] * g[1])], -1)
    np.testing.assert_array_equal(seen[..., 0:3], np.broadcast_to(thread, (blocks, n, 3)))
    np.testing.assert_array_equal(seen[..., 3:6], np.repeat(block_index[:, None], n, 1))
    np.testing.assert_array_equal(seen[..., 6:9], np.broadcast_to(k, (blocks, n, 3)))
    np.testing.assert_array_equal(seen[..., 9:12], np.broadcast_to(g, (blocks, n, 3)))
    np.testing.assert_array_equal(shuffled[..., 0], np.broadcast_to(t ^ 5, (blocks, n)))
    np.testing.assert_array_equal(shuffled[..., 1],
                                  1000 * b[:, None] + (t & ~31) + 31 - (t & 31))
    np.testing.assert_array_equal(shuffled[..., 2], np.broadcast_to(n - 1 - t, (blocks, n)))


def test_emulator_catches_a_wrong_mat_vec_launch(emulator):
    # the mat-vecs need blockDim.x == 32, one warp per row
    from gguf import GGMLQuantizationType
    q8 = GGMLQuantizationType.Q8_0
    rng = np.random.default_rng(0)
    blocks = _random_blocks(q8, 3, 64, rng)
    x = rng.standard_normal((1, 64)).astype(np.float32)
    _check_matvec(q8, blocks, x, _run_matvec(emulator, q8, blocks, x, block=(32, 4)))
    # 16 lanes a row: a warp spans rows 2 and 3; the lanes of row 3 (past the end) leave, the
    # lanes of row 2 wait for them in the shuffle
    with pytest.raises(AssertionError, match="deadlock"):
        _run_matvec(emulator, q8, blocks, x, block=(16, 4))
    with pytest.raises(AssertionError, match="at most 1024 threads"):
        emulator.launch("quant_matvec", "matvec_q8_0", (1,), (32, 16, 4),
                        (blocks.reshape(-1), x, x, np.int32(3), np.int32(64), np.int32(1)))


# ---------------------------------------------------------------------- quantized mat-vec
QTYPES = ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]


def _random_blocks(qtype, rows: int, cols: int, rng) -> np.ndarray:
    """Valid GGML blocks (rows, cols // QK * block_bytes) of a random matrix."""
    from gguf import GGMLQuantizationType as T
    from gguf import quants
    if qtype in (T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1):  # gguf quantizes these
        return quants.quantize(rng.standard_normal((rows, cols)).astype(np.float32), qtype)
    # gguf cannot quantize the K types: random quants, masks and 4/6-bit scales are all valid;
    # only the f16 super-block scales need sane values (random bits would give inf and NaN).
    block, nbytes = quants.GGML_QUANT_SIZES[qtype]
    n = rows * cols // block
    raw = rng.integers(0, 256, (n, nbytes), dtype=np.uint8)

    def f16():
        return rng.uniform(0.001, 0.05, n).astype(np.float16).view(np.uint8).reshape(n, 2)
    if qtype in (T.Q4_K, T.Q5_K):
        raw[:, 0:2] = f16()       # d
        raw[:, 2:4] = f16()       # dmin
    elif qtype == T.Q2_K:
        raw[:, 80:82] = f16()     # d, after the scales and qs
        raw[:, 82:84] = f16()     # dmin
    elif qtype == T.Q3_K:
        raw[:, 108:110] = f16()   # d, after hmask, qs and the packed scales
    else:
        raw[:, 208:210] = f16()   # Q6_K: d, after ql, qh and the int8 scales
    return raw.reshape(rows, cols // block * nbytes)


def _run_matvec(runner, qtype, blocks: np.ndarray, x: np.ndarray, w_offset: int = 0,
                x_offset: int = 0, warps_per_block: int = 4, block=None) -> np.ndarray:
    """y (n_vec, rows) from the kernel; the offsets place w / x at unaligned device addresses."""
    rows = blocks.shape[0]
    n_vec, cols = x.shape
    block = block or (32, warps_per_block)
    w_buf = runner.to_device(np.zeros(blocks.nbytes + 8, np.uint8))
    w_buf[w_offset:w_offset + blocks.nbytes] = runner.to_device(blocks.reshape(-1))
    x_buf = runner.to_device(np.zeros(x.size + 4, np.float32))
    x_buf[x_offset:x_offset + x.size] = runner.to_device(x.reshape(-1))
    # A guard zone after y, as long as the results of a whole group of 8 vectors
    y_buf = runner.to_device(np.full(n_vec * rows + 8 * rows, np.nan, np.float32))
    runner.launch("quant_matvec", f"matvec_{qtype.name.lower()}", (-(-rows // block[1]),),
                  block, (w_buf[w_offset:], x_buf[x_offset:], y_buf, np.int32(rows),
                          np.int32(cols), np.int32(n_vec)))
    y = runner.to_host(y_buf)
    assert np.isnan(y[n_vec * rows:]).all(), "the kernel wrote past the end of y"
    return y[:n_vec * rows].reshape(n_vec, rows)


def _check_matvec(qtype, blocks, x, y):
    from gguf import quants
    w = quants.dequantize(blocks, qtype).astype(np.float64)
    ref = x.astype(np.float64) @ w.T
    bound = np.abs(x.astype(np.float64)) @ np.abs(w).T  # the scale of a float32 sum's rounding
    err = np.abs(y - ref)
    assert np.all(err <= 1e-4 * np.abs(ref) + 1e-5 * bound), (
        f"{qtype.name}: max error {np.nanmax(err):.3g} (max |ref| {np.abs(ref).max():.3g})")


@pytest.mark.parametrize("n_vec", [1, 3, 8, 11])
@pytest.mark.parametrize("qtype_name", QTYPES)
def test_matvec_matches_gguf_dequantize(runner, qtype_name, n_vec):
    from gguf import GGMLQuantizationType
    qtype = GGMLQuantizationType[qtype_name]
    rng = np.random.default_rng(n_vec)
    # 37 rows: the last block of warps is partly empty; 768 columns: 3 super-blocks for the K
    # types, an odd number, so one half-warp has nothing to do in the last step. n_vec 11 takes
    # two passes (8 + 3 vectors).
    blocks = _random_blocks(qtype, 37, 768, rng)
    x = rng.standard_normal((n_vec, 768)).astype(np.float32)
    _check_matvec(qtype, blocks, x, _run_matvec(runner, qtype, blocks, x))


@pytest.mark.parametrize("qtype_name", QTYPES)
def test_matvec_reads_unaligned_blocks_and_vectors(runner, qtype_name):
    from gguf import GGMLQuantizationType
    qtype = GGMLQuantizationType[qtype_name]
    rng = np.random.default_rng(7)
    blocks = _random_blocks(qtype, 9, 512, rng)
    x = rng.standard_normal((2, 512)).astype(np.float32)
    for w_offset, x_offset in [(0, 0), (1, 0), (2, 1), (3, 3)]:
        for warps_per_block in (2, 3):  # 3: a block of 96 threads, 3 rows (any blockDim.y works)
            y = _run_matvec(runner, qtype, blocks, x, w_offset=w_offset, x_offset=x_offset,
                            warps_per_block=warps_per_block)
            _check_matvec(qtype, blocks, x, y)


def test_matvec_on_a_layer_sized_matrix(runner):
    from gguf import GGMLQuantizationType
    rng = np.random.default_rng(3)
    rows = 1024 if runner.name == "gpu" else 128  # the emulator runs every CUDA thread
    for name in QTYPES:
        qtype = GGMLQuantizationType[name]
        blocks = _random_blocks(qtype, rows, 4096, rng)
        x = rng.standard_normal((1, 4096)).astype(np.float32)
        _check_matvec(qtype, blocks, x, _run_matvec(runner, qtype, blocks, x))


# ---------------------------------------------------------------------- decode attention
def _attention_reference(q, k, v, seq_lens, scale, window):
    """float64 softmax(scale q k^T) v over each sequence's valid (and windowed) positions."""
    batch, n_heads, head_dim = q.shape
    group = n_heads // k.shape[1]
    out = np.zeros((batch, n_heads, head_dim))
    for b in range(batch):
        end = int(seq_lens[b])
        start = max(0, end - window) if window > 0 else 0
        if end <= start:
            continue
        for h in range(n_heads):
            keys = k[b, h // group, start:end].astype(np.float64)
            values = v[b, h // group, start:end].astype(np.float64)
            scores = keys @ q[b, h].astype(np.float64) * scale
            p = np.exp(scores - scores.max())
            out[b, h] = p @ values / p.sum()
    return out


_DTYPES = {  # storage dtype -> (kernel suffix, tolerance of the stored output)
    "float32": ("f32", 2e-5),
    "float16": ("f16", 2e-3),
    "bfloat16": ("bf16", 1.6e-2),
}


def _run_attention(runner, dtype, batch, n_heads, n_kv_heads, max_seq, head_dim, seq_lens,
                   window, threads=128, seed=0, q_gain=1.0):
    import ml_dtypes
    suffix, tol = _DTYPES[dtype]
    np_dtype = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
    rng = np.random.default_rng(seed)
    q = (rng.standard_normal((batch, n_heads, head_dim)) * q_gain).astype(np_dtype)
    k = rng.standard_normal((batch, n_kv_heads, max_seq, head_dim)).astype(np_dtype)
    v = rng.standard_normal((batch, n_kv_heads, max_seq, head_dim)).astype(np_dtype)
    lens = np.asarray(seq_lens, np.int32)
    scale = 1.0 / np.sqrt(head_dim)

    def device(a):  # CuPy has no bfloat16: the kernel reads the same 16-bit patterns
        return runner.to_device(a.view(np.uint16) if dtype == "bfloat16" else a)
    size = batch * n_heads * head_dim
    out = device(np.full(size + 64, np.nan, np_dtype))  # a guard zone after the output
    runner.launch("decode_attention", f"decode_attention_{suffix}", (n_heads, batch), (threads,),
                  (device(q), device(k), device(v), out, runner.to_device(lens),
                   np.int32(n_heads), np.int32(n_kv_heads), np.int32(max_seq),
                   np.int32(head_dim), np.float32(scale), np.int32(window)))
    got = runner.to_host(out)
    if dtype == "bfloat16":
        got = got.view(ml_dtypes.bfloat16)
    assert np.isnan(got[size:].astype(np.float32)).all(), "the kernel wrote past the output"
    got = got[:size].reshape(batch, n_heads, head_dim)
    ref = _attention_reference(q, k, v, np.clip(lens, 0, max_seq), scale, window)
    return got.astype(np.float64), ref, tol


ATTENTION_CASES = {
    # name: (batch, n_heads, n_kv_heads, max_seq, head_dim, seq_lens, window, threads)
    "gqa": (2, 8, 2, 300, 64, [77, 300], 0, 128),
    "mqa-window": (2, 4, 1, 200, 128, [150, 33], 40, 128),
    "window-1": (1, 4, 2, 100, 128, [99], 1, 128),
    "odd-head-dim-one-warp": (2, 6, 3, 90, 80, [90, 5], 0, 32),
    "head-dim-256-empty-seq": (2, 2, 2, 130, 256, [0, 129], -1, 256),
    "seq-len-past-max-clamps": (1, 2, 1, 64, 64, [1000], 0, 128),
}


@pytest.mark.parametrize("dtype", sorted(_DTYPES))
@pytest.mark.parametrize("case", sorted(ATTENTION_CASES))
def test_decode_attention_matches_numpy(runner, case, dtype):
    batch, n_heads, n_kv, max_seq, head_dim, lens, window, threads = ATTENTION_CASES[case]
    got, ref, tol = _run_attention(runner, dtype, batch, n_heads, n_kv, max_seq, head_dim, lens,
                                   window, threads=threads)
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_decode_attention_long_cache(runner, dtype):
    # 32768 positions on the GPU (4096 in the emulator, where every CUDA thread is emulated):
    # the online softmax needs no memory proportional to seq_len; peaked scores (q scaled up)
    # check that the running maximum keeps exp() from overflowing.
    n = 32768 if runner.name == "gpu" else 4096
    got, ref, tol = _run_attention(runner, dtype, 1, 4, 2, n, 128, [n - 7], 0, q_gain=8.0)
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)
    got, ref, tol = _run_attention(runner, dtype, 1, 4, 2, n, 128, [n - 7], n // 8, seed=1)
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)
