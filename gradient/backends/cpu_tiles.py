"""Products of a prompt's rows by a bfloat16 weight on the CPU's matrix tiles (Intel AMX).

Intel's Advanced Matrix Extensions (Xeons from Sapphire Rapids on) add eight tile registers of
16 rows of 64 bytes and ``tdpbf16ps``, which multiplies a 16 x 32 tile of bfloat16 values by
a 32 x 16 one into a 16 x 16 tile of float32 sums: 8,192 multiply-adds in one instruction,
where ``vdpbf16ps`` (the bfloat16 pairs of :mod:`.cpu_float_rows`) does 32. A prompt's
product with a weight, many rows of x by every weight row, is where that pays. SmolLM2-135M's
210 matrices in bfloat16, 2 threads, a Xeon with AMX, medians of 7 passes alternated with
the vector kernel in one process: rows of x in bfloat16 (a bfloat16 model's activations, or
llama.cpp's numerics for a BF16 file), 16 rows 27.7 -> 20.8 ms, 64 rows 90.3 -> 31.8 ms,
256 rows 330 -> 92 ms; rows in float32 (:func:`float32_tile_product`), 30.4 -> 27.5,
88.0 -> 54.7 and 368 -> 180 ms.

How ``y = x @ w.T`` (x of m rows, w of n rows, k values each) goes onto the tiles:

* w goes in 32 rows at a time, copied first into a buffer where each step of 32 values of
  16 rows is 1 KB in one piece (:func:`_copy_group`): tiles loaded from w's rows in place,
  16 lines apart, streamed the weights at a third of the speed.
* x's rows are the instruction's second operand, which holds pairs of values (row ``p`` of a
  tile: the values ``2p`` and ``2p + 1`` of 16 rows of x side by side), rearranged once per
  call (:func:`_pairs_by_row`, 16 x 16 transpositions of 32-bit pairs in registers).
* Four tiles of sums (32 weight rows by 32 rows of x) take two tiles of w and two of x per
  step: the eight registers. A tile of sums is transposed into ``y`` on the way out.
* float32 rows of x go in as three bfloat16 parts whose sum is each value exactly
  (:func:`_parts`: hi, mid, lo, 8 bits of significand each), multiplied into the same sums:
  float32's accuracy (within float32 rounding of the exact sum, as the vector kernel), for
  three times the products, which the tiles have to spare.

The arithmetic is the tile unit's: each product exact, subnormal values and results taken as
zero, the sums added in an order of the hardware's (measured: none of float32's sequential
orders), so a row gets other bits here than from the vector kernel alone (a decode step),
both within float32's rounding of the exact sum. Hence only a product of at least
:data:`TILES_FROM` rows comes here, never within :func:`gradient.kernels.rows_alone` (a batch
of decode steps, a speculative step's check, a captured step), and a row's sums depend only
on that row and w: the same bits whatever rows share its call.

Linux lends a process the tile registers only when asked (``arch_prctl``); :func:`available`
asks once, and answers False on CPUs or systems without them (no code with tile instructions
is compiled there), or with ``GRADIENT_AMX=0`` in the environment, which leaves every product
to the vector kernel.

Example::

    >>> if available():
    ...     y = bfloat16_tile_product(as_bits(x), as_bits(w))   # x (64, 576), w (1536, 576)
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import sys

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from ..errors import DeviceError, ShapeError
from .cpu_compile import compile_kernel
from .cpu_half import narrow, widen
from .cpu_simd import _call, _pointer  # (the intrinsics' own helpers, shared)
from .cpu_simd import features, load_pairs_i32x16, store_i32x16, transpose_16x16

__all__ = ["available", "bfloat16_tile_product", "float32_tile_product", "takes", "TILES_FROM"]

#: The fewest rows of x a product takes on the tiles. Fewer rows are decode steps (one per
#: sequence of a batch) and speculative drafts, which keep the vector kernel's bits; a prompt
#: of 16 tokens and more comes here.
TILES_FROM = 16

#: Values of k one tile step takes (32 bfloat16 values: a tile row of 64 bytes).
STEP = 32

_ARCH_REQ_XCOMP_PERM = 0x1023      # arch_prctl's request, and the tile data's state component
_XFEATURE_XTILEDATA = 18
_SYS_ARCH_PRCTL = 158              # x86-64


@functools.cache
def available() -> bool:
    """Whether this process can use AMX bfloat16 tiles: the CPU has them, numba compiles for
    them, Linux lent them to the process, and ``GRADIENT_AMX`` is not ``0``."""
    if os.environ.get("GRADIENT_AMX", "1") == "0":
        return False
    if not (sys.platform == "linux" and platform.machine() == "x86_64"):
        return False
    from numba.core.registry import cpu_target
    if not {"+amx-tile", "+amx-bf16"} <= features(cpu_target.target_context):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    request = (ctypes.c_long(_SYS_ARCH_PRCTL), ctypes.c_long(_ARCH_REQ_XCOMP_PERM),
               ctypes.c_long(_XFEATURE_XTILEDATA))
    return libc.syscall(*request) == 0


def takes(m: int, k: int) -> bool:
    """Whether a product of ``m`` rows of x, ``k`` values each, by a bfloat16 weight goes on
    the tiles (given :func:`available`)."""
    return m >= TILES_FROM and k % STEP == 0 and k > 0


# ----------------------------------------------------------------------------- the tiles
# Each instruction names its tile registers by number (an immediate), so each use below is an
# intrinsic of its own: the numbers are fixed by the layout of the four sums.
_I8, _I64, _VOID = ir.IntType(8), ir.IntType(64), ir.VoidType()


def _address(context, builder, array_type, array, index):
    """A byte pointer at the flat element ``index`` of a C-contiguous array."""
    return _pointer(context, builder, array_type, array, index, _I8)


@intrinsic
def _configure(typingctx, config):
    """Load the tiles' shapes from the 64-byte ``config`` (``ldtilecfg``)."""
    def codegen(context, builder, signature, args):
        _call(builder, "llvm.x86.ldtilecfg", _VOID,
              _address(context, builder, signature.args[0], args[0], ir.Constant(_I64, 0)))
    return types.void(config), codegen


@intrinsic
def _release(typingctx):
    """Give the tiles back (``tilerelease``): the thread's state is small again."""
    def codegen(context, builder, signature, args):
        _call(builder, "llvm.x86.tilerelease", _VOID)
    return types.void(), codegen


def _moving(name: str, tile: int):
    """A load or store of tile ``tile``: ``(array, flat index, row stride in bytes)``."""
    @intrinsic
    def move(typingctx, array, index, stride):
        def codegen(context, builder, signature, args):
            _call(builder, name, _VOID, ir.Constant(_I8, tile),
                  _address(context, builder, signature.args[0], args[0], args[1]), args[2])
        return types.void(array, types.int64, types.int64), codegen
    return move


def _instruction(name: str, *tiles: int):
    """``name`` on the tiles ``tiles`` (numbers), no other operand."""
    @intrinsic
    def instruction(typingctx):
        def codegen(context, builder, signature, args):
            _call(builder, name, _VOID, *(ir.Constant(_I8, t) for t in tiles))
        return types.void(), codegen
    return instruction


# tiles 0-3: the sums of weight rows (a) by rows of x (b), 0 = a0 b0, 1 = a0 b1, 2 = a1 b0,
# 3 = a1 b1; tiles 4, 5: two tiles of w (a0, a1); tiles 6, 7: two of x's pairs (b0, b1)
_zero0, _zero1, _zero2, _zero3 = (_instruction("llvm.x86.tilezero", t) for t in range(4))
_store0, _store1, _store2, _store3 = (_moving("llvm.x86.tilestored64", t) for t in range(4))
_load_w0, _load_w1, _load_x0, _load_x1 = (_moving("llvm.x86.tileloadd64", t) for t in (4, 5, 6, 7))
_dot0, _dot1, _dot2, _dot3 = (_instruction("llvm.x86.tdpbf16ps", s, a, b)
                              for s, (a, b) in enumerate(((4, 6), (4, 7), (5, 6), (5, 7))))

#: The tile configuration (``ldtilecfg``'s 64 bytes): palette 1, eight tiles of 16 rows of 64
#: bytes (the sums' 16 float32, w's 32 bfloat16, x's 16 pairs).
_CONFIG = np.zeros(64, np.uint8)
_CONFIG[0] = 1
_CONFIG[16:32].view(np.uint16)[:8] = 64
_CONFIG[48:56] = 16


# ----------------------------------------------------------------------------- kernels
@compile_kernel
def _pairs_by_row(pairs):
    """x's rows as the tiles take them: ``pairs`` is (parts, m, k / 2), x's parts (one, or
    three: :func:`_parts`) viewed as 32-bit pairs of bfloat16; the result (parts, b, k / 32,
    16, 16), b the blocks of 16 rows rounded up to an even number, holds at [t, b, s, p, q]
    the pair p of step s of row 16 b + q of part t (zero past m)."""
    parts, m, half = pairs.shape
    steps = half // 16
    blocks = -(-m // 32) * 2
    out = np.zeros((parts, blocks, steps, 16, 16), np.float32)
    flat = out.ravel()
    rows = np.zeros((16, half), np.float32)       # a last block of fewer than 16 rows
    for t in range(parts):
        for b in range(-(-m // 16)):
            if 16 * b + 16 <= m:
                source, at = pairs.ravel(), (t * m + 16 * b) * half
            else:
                rows[:m - 16 * b] = pairs[t, 16 * b:]
                source, at = rows.ravel(), 0
            for s in range(steps):
                transpose_16x16(source, at + 16 * s, half, flat,
                                ((t * blocks + b) * steps + s) * 256, 16)
    return out


@compile_kernel(inline=True)
def _copy_group(w, r, group):
    """The 32 weight rows from r (zeros past w's last row) into ``group`` (k / 32, 32, 16),
    int32 pairs: the step s of row j at [s, j], so that a tile of 16 rows is 1 KB in one
    piece. Written in order, the rows of a step side by side (row by row, the writes 2 KB
    apart fell into two of the L1 cache's 64 sets: the whole-model product of 16 rows took
    22 ms instead of 18)."""
    n, k = w.shape
    flat, out = w.ravel(), group.ravel()
    rows = min(32, n - r)
    for s in range(k // 32):
        for j in range(rows):
            store_i32x16(out, (s * 32 + j) * 16, load_pairs_i32x16(flat, (r + j) * k + 32 * s))
        for j in range(rows, 32):
            group[s, j] = 0


@compile_kernel(inline=True)
def _sums_out(sums, out, r, b):
    """The four tiles of sums for weight rows r .. r + 31 and rows of x 16 b .. 16 b + 31 into
    ``out`` (m, n): transposed 16 x 16 blocks, value by value past w's or x's last row."""
    m, n = out.shape
    for t in range(4):
        row, col = r + 16 * (t // 2), 16 * (b + t % 2)
        if row + 16 <= n and col + 16 <= m:
            transpose_16x16(sums.ravel(), t * 256, 16, out.ravel(), col * n + row, n)
        else:
            for j in range(min(16, n - row)):
                for q in range(min(16, m - col)):
                    out[col + q, row + j] = sums[t, j, q]


@compile_kernel
def _rows(x_pairs, w, out, r0, r1, config):
    """``out[:, r] = x @ w[r]`` for the weight rows r0 .. r1 - 1 (r0 a multiple of 32): 32
    weight rows at a time (:func:`_copy_group`), each pair of tiles of w by every pair of
    tiles of x's rows, the parts of x (:func:`_pairs_by_row`) into the same sums."""
    k = w.shape[1]
    steps = k // 32
    parts, blocks = x_pairs.shape[0], x_pairs.shape[1]
    group = np.empty((steps, 32, 16), np.int32)
    sums = np.empty((4, 16, 16), np.float32)
    xs, ws, held = x_pairs.ravel(), group.ravel(), sums.ravel()
    _configure(config)
    for r in range(r0, r1, 32):
        _copy_group(w, r, group)
        for b in range(0, blocks, 2):
            both = 16 * b + 16 < out.shape[0]     # (else the second block is all padding)
            _zero0()
            _zero1()
            _zero2()
            _zero3()
            for s in range(steps):
                # each load just before the first product that needs it: tiles are not
                # renamed, so a load waits for the products still reading its tile (all
                # loads first, then the four products, took twice as long)
                _load_w0(ws, s * 512, 64)
                _load_w1(ws, s * 512 + 256, 64)
                for t in range(parts):
                    first = ((t * blocks + b) * steps + s) * 256
                    _load_x0(xs, first, 64)
                    _dot0()
                    _dot2()
                    if both:
                        _load_x1(xs, first + steps * 256, 64)
                        _dot1()
                        _dot3()
            _store0(held, 0, 64)
            _store1(held, 256, 64)
            _store2(held, 512, 64)
            _store3(held, 768, 64)
            _sums_out(sums, out, r, b)
    _release()


@compile_kernel(parallel=True)
def _parallel(x_pairs, w, out, n_chunks, config):
    """:func:`_rows` over ``n_chunks`` chunks of weight rows (multiples of 32) on numba's
    threads; each thread loads the tile configuration itself."""
    n = w.shape[0]
    step = ((n + n_chunks - 1) // n_chunks + 31) // 32 * 32
    for c in numba.prange(n_chunks):
        _rows(x_pairs, w, out, min(n, c * step), min(n, (c + 1) * step), config)


def bfloat16_tile_product(x_bits: np.ndarray, w_bits: np.ndarray) -> np.ndarray:
    """``x @ w.T`` in float32 on the tiles, for bfloat16 ``x`` (m, k) and ``w`` (n, k) given as
    their bits (int16, C-contiguous), where :func:`takes` ``(m, k)``.

    Example: ``y = bfloat16_tile_product(as_bits(x), as_bits(w))``
    """
    return _product(x_bits[None], w_bits)


def float32_tile_product(x: np.ndarray, w_bits: np.ndarray) -> np.ndarray | None:
    """``x @ w.T`` for float32 ``x`` (m, k) by a bfloat16 ``w`` (its bits) on the tiles, to
    float32's accuracy: each value of x is the sum of three bfloat16 values (:func:`_parts`,
    exactly), whose products with w go into the same float32 sums. None where x holds a value
    that is not such a sum (not finite, or past bfloat16's largest): the caller's kernel then.

    Example: ``y = float32_tile_product(x, as_bits(w))``
    """
    parts, exact = _parts(np.ascontiguousarray(x, dtype=np.float32), np.empty(0, np.int16))
    return _product(parts, w_bits) if exact else None


def _product(parts: np.ndarray, w_bits: np.ndarray) -> np.ndarray:
    """The sums of the products of x's ``parts`` (parts, m, k) bits with w's."""
    if not available():
        raise DeviceError("this CPU (or system) lends no AMX tiles: check "
                          "gradient.backends.cpu_tiles.available() first")
    m, k = parts.shape[1:]
    if not (takes(m, k) and w_bits.ndim == 2 and w_bits.shape[1] == k
            and w_bits.dtype == np.int16 and w_bits.flags.c_contiguous):
        raise ShapeError(f"a tile product takes x of at least {TILES_FROM} rows of a multiple "
                         f"of {STEP} values and a C-contiguous bfloat16 weight of as many "
                         f"columns (its int16 bits), got x {(m, k)} and w {w_bits.shape} "
                         f"{w_bits.dtype}")
    parts = np.ascontiguousarray(parts)
    x_pairs = _pairs_by_row(parts.view(np.float32))
    out = np.empty((parts.shape[1], w_bits.shape[0]), np.float32)
    n_chunks = max(1, min(-(-w_bits.shape[0] // 32), 2 * numba.get_num_threads()))
    _parallel(x_pairs, w_bits, out, n_chunks, _CONFIG)
    return out


@compile_kernel
def _parts(x, like):
    """float32 x (m, k) as three bfloat16 arrays' bits (3, m, k), hi, mid and lo with hi + mid
    + lo == x exactly (each rounded to nearest from what the ones before leave: a float32's 24
    bits of significand are three bfloat16's 8), and whether every value was such a sum."""
    m, k = x.shape
    out = np.empty((3, m, k), np.int16)
    exact = True
    for i in range(m):
        for c in range(k):
            v = x[i, c]
            if not abs(v) < _LARGEST:
                exact = False
            hi = narrow(v, like)
            rest = v - widen(hi)
            mid = narrow(rest, like)
            out[0, i, c] = hi
            out[1, i, c] = mid
            out[2, i, c] = narrow(rest - widen(mid), like)
    return out, exact


#: Values of x from this magnitude on are left to the vector kernel (a bfloat16 part would
#: round to infinity).
_LARGEST = np.float32(2.0 ** 127)
