"""FlashAttention on the CUDA backend: ``kernels/flash_attention.cu`` through the launchers of
``gradient/backends/cuda/flash.py``, against PyTorch's ``scaled_dot_product_attention`` in
float64 (forward, and backward for a random upstream gradient).

Two devices run the same launcher calls (the ``device`` fixture):

* ``emulator``: NumPy stands in for CuPy in ``flash`` and every launch runs on the CPU emulator
  of ``cuda_emulator.py`` (the ``.cu`` file built by g++, each CUDA thread a coroutine), with
  each argument checked against the kernel's C signature. It checks the kernels' arithmetic,
  tiling, masking, barriers and shuffles and the launchers' grids on any Linux machine.
* ``gpu`` (marked ``gpu``, skipped without CuPy or a device): CuPy on a real device.

The file compiling for sm_80/sm_90 is checked by ``test_cuda_kernels.py`` (every kernel file).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from gradient.backends.cuda import flash
from gradient.backends.cuda.compile import get_kernel, kernel_names, kernel_sources

from .cuda_emulator import build_emulator, check_launch_args

torch = pytest.importorskip("torch", reason="PyTorch is the reference of these tests")

STEM = "flash_attention"
SOURCE = kernel_sources()[STEM]


def _check_args(stem: str, name: str, args: tuple) -> None:
    """Every launch argument has the exact type of its C parameter, and arrays are contiguous."""
    check_launch_args(stem, name, args)


# ---------------------------------------------------------------------- devices
@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    return build_emulator(tmp_path_factory.mktemp("cuda_emulator_flash"), _check_args, [STEM])


@pytest.fixture(scope="module")
def cupy():
    cp = pytest.importorskip("cupy", reason="CuPy is not installed")
    try:
        available = cp.cuda.is_available()
    except Exception:  # a broken driver install
        available = False
    if not available:
        pytest.skip("no CUDA device (cupy.cuda.is_available() is False)")
    return cp


class Device:
    """Where the launchers run: ``put`` copies a NumPy array there, ``get`` brings one back."""

    def __init__(self, name, put, get, launches):
        self.name, self.put, self.get, self.launches = name, put, get, launches


@pytest.fixture(params=["emulator", pytest.param("gpu", marks=pytest.mark.gpu)])
def device(request, monkeypatch):
    launches = []  # (kernel name, grid) of every launch

    if request.param == "emulator":
        runner = request.getfixturevalue("emulator")
        monkeypatch.setattr(flash, "_cupy", lambda: np)

        def emulated(stem, name):
            def launch(grid, block, args, shared_mem=0):
                launches.append((name, tuple(grid)))
                runner.launch(stem, name, grid, block, args, shared_mem)
            return launch
        monkeypatch.setattr(flash, "get_kernel", emulated)
        return Device("emulator", np.array, np.asarray, launches)

    cp = request.getfixturevalue("cupy")

    def checked(stem, name):
        kernel = get_kernel(stem, name)

        def launch(grid, block, args, shared_mem=0):
            _check_args(stem, name, args)
            launches.append((name, tuple(grid)))
            kernel(grid, block, args, shared_mem=shared_mem)
        return launch
    monkeypatch.setattr(flash, "get_kernel", checked)
    return Device("gpu", cp.asarray, cp.asnumpy, launches)


# ---------------------------------------------------------------------- reference
def _reference(q, k, v, grad, scale, causal):
    """out, lse, dq, dk, dv in float64 from torch's scaled_dot_product_attention."""
    qt, kt, vt = (torch.tensor(np.asarray(a, np.float64), requires_grad=True) for a in (q, k, v))
    out = torch.nn.functional.scaled_dot_product_attention(qt, kt, vt, is_causal=causal,
                                                           scale=scale)
    out.backward(torch.tensor(np.asarray(grad, np.float64)))
    with torch.no_grad():
        scores = scale * qt @ kt.transpose(-1, -2)
        if causal:  # top-left aligned, as is_causal
            L, S = scores.shape[-2:]
            scores = scores.masked_fill(torch.ones(L, S, dtype=torch.bool).triu(1), -math.inf)
        lse = torch.logsumexp(scores, -1)
    return [t.numpy() for t in (out.detach(), lse, qt.grad, kt.grad, vt.grad)]


TOLERANCE = {"float32": 1e-5, "float16": 2e-3, "bfloat16": 2e-2}


def _close(actual, expected, dtype, what):
    """Equal to ``tol`` relative, and absolutely to ``tol`` times the largest reference value."""
    tol = TOLERANCE[str(np.dtype(dtype))]
    actual = np.asarray(actual, np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=tol,
                               atol=tol * max(1.0, float(np.abs(expected).max(initial=0.0))),
                               err_msg=what)


def _inputs(rng, lead, L, S, E, Ev, dtype):
    shapes = [lead + (L, E), lead + (S, E), lead + (S, Ev), lead + (L, Ev)]
    return [rng.standard_normal(s).astype(np.float32).astype(dtype) for s in shapes]


def _run_and_check(device, q, k, v, grad, scale, causal, dtype, reference_inputs=None):
    """Forward and backward on the device against the float64 reference (of the stored values,
    or of ``reference_inputs`` when given)."""
    d = device.put
    result = flash.attention_forward(d(q), d(k), d(v), scale, causal)
    assert result is not None, "attention_forward declined"
    out, lse = result
    assert out.dtype == q.dtype and lse.dtype == np.float32
    grads = flash.attention_backward(d(grad), d(q), d(k), d(v), out, lse, scale, causal)
    assert grads is not None, "attention_backward declined"
    ref = _reference(*(reference_inputs or (q, k, v)), grad, scale, causal)
    for what, actual, expected in zip(("out", "lse", "dq", "dk", "dv"), (out, lse, *grads), ref):
        actual = device.get(actual)
        if what != "lse":
            assert actual.dtype == q.dtype, f"{what}: dtype {actual.dtype}"
        _close(actual, expected, np.float32 if what == "lse" else dtype, what)


# ---------------------------------------------------------------------- the kernels' contract
def test_the_file_defines_every_kernel_for_every_storage_dtype():
    assert SOURCE.lstrip().startswith("//"), "flash_attention.cu starts without its header"
    assert kernel_names(SOURCE) == [
        f"flash_attention_{kind}_{sfx}" for sfx in ("f32", "f16", "bf16")
        for kind in ("forward", "backward_dot", "backward_dkdv", "backward_dq")]


def test_the_launchers_tile_tables_are_the_kernels_tiles():
    # the grids are sized from flash.py's tables; the kernels take their tiles from the
    # FA_BUCKETS(call, T, BM, BN for D = 32, for D = 64, for D = 128) of each kernel
    def tiles(call, index):  # {D: BM} (index 0) or {D: BN} (index 1)
        found = re.findall(r"FA_BUCKETS\(" + call + r", T, ([\d, ]+)\)", SOURCE)
        assert len(found) == 1, call
        sizes = [int(n) for n in found[0].split(",")]
        return {d: sizes[2 * i + index] for i, d in enumerate((32, 64, 128))}
    assert flash.FORWARD_QUERY_ROWS == tiles("FA_CALL_FORWARD", 0)
    assert flash.BACKWARD_KEY_ROWS == tiles("FA_CALL_DKDV", 1)
    assert flash.BACKWARD_QUERY_ROWS == tiles("FA_CALL_DQ", 0)
    assert f"#define FA_THREADS {flash.THREADS}" in SOURCE


# ---------------------------------------------------------------------- against PyTorch
# (Z, L, S, E, Ev): tiles are 16 to 64 rows, so every case has several query and key tiles and
# lengths that are not multiples of them; head dims 16, 64 and 80 take the three tile shapes
CASES = {
    "L==S,E16,Z3": ((3,), 70, 70, 16, 16),
    "L<S,E64": ((1,), 40, 100, 64, 64),
    "L>S,E64": ((1,), 100, 40, 64, 64),
    "E80,Ev48,Z2x2": ((2, 2), 45, 37, 80, 48),
    "one query": ((2,), 1, 50, 32, 32),
}


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_torch_sdpa(device, case, causal):
    lead, L, S, E, Ev = CASES[case]
    rng = np.random.default_rng(sum(map(ord, case)))  # a seed per case, stable
    q, k, v, grad = _inputs(rng, lead, L, S, E, Ev, np.float32)
    _run_and_check(device, q, k, v, grad, 1.0 / math.sqrt(E), causal, np.float32)


def test_float16_matches_torch_sdpa(device):
    rng = np.random.default_rng(1)
    q, k, v, grad = _inputs(rng, (2,), 50, 70, 64, 64, np.float16)
    _run_and_check(device, q, k, v, grad, 0.125, True, np.float16)


def test_bfloat16_kernels_match_torch_sdpa(device, monkeypatch):
    # the launchers decline bfloat16 (CuPy has no such dtype); the kernels exist for it
    if device.name != "emulator":
        pytest.skip("CuPy has no bfloat16 dtype")
    ml_dtypes = pytest.importorskip("ml_dtypes")
    bf16 = np.dtype(ml_dtypes.bfloat16)
    monkeypatch.setitem(flash._SUFFIX, bf16, "bf16")
    q, k, v, grad = _inputs(np.random.default_rng(2), (1,), 33, 40, 16, 16, bf16)
    _run_and_check(device, q, k, v, grad, 0.25, True, bf16)


def test_strided_transposed_heads(device):
    # (batch, seq, heads, dim) viewed as (batch, heads, seq, dim), as after a projection: the
    # launchers take strided views (the kernels get contiguous copies)
    rng = np.random.default_rng(3)
    B, H, L, S, E = 2, 3, 20, 27, 16
    base = [rng.standard_normal((B, n, H, E)).astype(np.float32) for n in (L, S, S, L)]
    q, k, v, grad = (a.transpose(0, 2, 1, 3) for a in base)
    qd, kd, vd, gd = (device.put(a).transpose(0, 2, 1, 3) for a in base)
    assert not qd.flags.c_contiguous
    out, lse = flash.attention_forward(qd, kd, vd, 0.3, True)
    assert out.shape == (B, H, L, E) and lse.shape == (B, H, L)
    dq, dk, dv = flash.attention_backward(gd, qd, kd, vd, out, lse, 0.3, True)
    ref = _reference(q, k, v, grad, 0.3, True)
    for what, actual, expected in zip(("out", "lse", "dq", "dk", "dv"), (out, lse, dq, dk, dv),
                                      ref):
        _close(device.get(actual), expected, np.float32, what)


def test_causal_reads_no_key_tile_past_the_diagonal(device):
    # L < S: keys from 64 on (a multiple of every key tile) are seen by no query. Filled with
    # NaN, they would poison the output and the gradients if a kernel read their tiles
    # (0 * NaN = NaN): the forward and dq must stop at the diagonal, dk/dv start there.
    rng = np.random.default_rng(4)
    for E in (16, 64, 80):
        q, k, v, grad = _inputs(rng, (2,), 40, 130, E, E, np.float32)
        k_nan, v_nan = k.copy(), v.copy()
        k_nan[:, 64:] = np.nan
        v_nan[:, 64:] = np.nan
        _run_and_check(device, q, k_nan, v_nan, grad, 1.0 / math.sqrt(E), True, np.float32,
                       reference_inputs=(q, k, v))


@pytest.mark.parametrize("height", [1, 2])
def test_any_grid_height_is_correct(device, monkeypatch, height):
    # the kernels stride over the tiles by gridDim.y: with fewer blocks than tiles (the
    # launchers cap grid.y at 65535; here at 1 or 2) the blocks loop over the rest
    monkeypatch.setattr(flash, "_GRID_Y", height)
    rng = np.random.default_rng(5)
    q, k, v, grad = _inputs(rng, (2,), 70, 90, 64, 64, np.float32)   # 2 to 3 tiles each
    _run_and_check(device, q, k, v, grad, 0.125, True, np.float32)
    tiles = [grid for name, grid in device.launches if "backward_dot" not in name]
    assert len(tiles) == 3 and all(grid == (2, height) for grid in tiles)


def test_grid_has_a_block_per_tile_and_batch_head(device):
    rng = np.random.default_rng(6)
    q, k, v, grad = _inputs(rng, (2, 3), 100, 40, 64, 64, np.float32)
    _run_and_check(device, q, k, v, grad, 0.125, False, np.float32)
    grids = {name.rsplit("_", 1)[0]: grid for name, grid in device.launches}
    tiles = {"forward": (100, flash.FORWARD_QUERY_ROWS), "backward_dkdv": (40, flash.BACKWARD_KEY_ROWS),
             "backward_dq": (100, flash.BACKWARD_QUERY_ROWS)}
    for kind, (length, rows) in tiles.items():  # head dim 64: the D = 64 tiles
        assert grids[f"flash_attention_{kind}"] == (6, math.ceil(length / rows[64])), kind
    assert grids["flash_attention_backward_dot"] == (math.ceil(6 * 100 / 4),)  # a warp a row


def test_no_query_gives_empty_outputs_and_zero_key_gradients(device):
    rng = np.random.default_rng(7)
    q, k, v, grad = _inputs(rng, (2,), 0, 5, 16, 8, np.float32)
    d = device.put
    out, lse = flash.attention_forward(d(q), d(k), d(v), 0.25, True)
    assert out.shape == (2, 0, 8) and lse.shape == (2, 0)
    dq, dk, dv = flash.attention_backward(d(grad), d(q), d(k), d(v), out, lse, 0.25, True)
    assert dq.shape == (2, 0, 16) and not device.get(dk).any() and not device.get(dv).any()
    assert dk.shape == (2, 5, 16) and dv.shape == (2, 5, 8)
    assert device.launches == []


# ---------------------------------------------------------------------- what the launchers decline
def test_launchers_decline_what_the_kernels_do_not_take():
    # declined before any array is made or kernel launched: NumPy arrays are enough here
    def arrays(L=4, S=6, E=16, Ev=16, dtype=np.float32, lead=(2,)):
        return [np.zeros(lead + s, dtype) for s in ((L, E), (S, E), (S, Ev))]

    fwd = flash.attention_forward
    assert fwd(*arrays(dtype=np.float64), 0.5, False) is None          # float64 storage
    assert fwd(*arrays(E=129), 0.5, False) is None                     # head dim over 128
    assert fwd(*arrays(Ev=129), 0.5, False) is None
    assert fwd(*arrays(E=0), 0.5, False) is None                       # no feature
    assert fwd(*arrays(S=0), 0.5, True) is None                        # no key
    q, k, v = arrays()
    assert fwd(q, k[:1], v[:1], 0.5, False) is None                    # leading dims differ
    assert fwd(q, k[..., :8], v, 0.5, False) is None                   # q and k head dims
    assert fwd(q, k, v[:, :5], 0.5, False) is None                     # k and v lengths
    assert fwd(q, k, v.astype(np.float16), 0.5, False) is None         # mixed dtypes
    assert fwd(q[0, 0], k[0, 0], v[0, 0], 0.5, False) is None          # 1-D
    ml_dtypes = pytest.importorskip("ml_dtypes")
    assert fwd(*arrays(dtype=ml_dtypes.bfloat16), 0.5, False) is None  # no CuPy bfloat16
    out, lse = np.zeros((2, 4, 16), np.float32), np.zeros((2, 4), np.float32)
    bwd = flash.attention_backward
    assert bwd(out[:, :3], q, k, v, out, lse, 0.5, False) is None      # grad shape != out's
    assert bwd(out, q, k, v, out, lse[:, :3], 0.5, False) is None      # lse shape
    assert bwd(out.astype(np.float16), q, k, v, out, lse, 0.5, False) is None
    assert bwd(*[a.astype(np.float64) for a in (out, q, k, v, out)], lse, 0.5, False) is None
