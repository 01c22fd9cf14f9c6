"""Weight-only quantization of a model: every ``nn.Linear`` becomes a layer whose weight is
stored in 8 or 4 bits and multiplied without ever being expanded to a float matrix.

``quantize(model, scheme, ...)`` is the entry point (``gradient.quant.quantize``). Schemes:

* ``"int8"`` -- signed 8-bit codes, symmetric, one scale per output channel by default
  (``scale = max|w_row| / 127``, ``w ~ q * scale``, ``q`` in -127..127).
* ``"int4"`` -- 4-bit codes in groups of ``group_size`` consecutive weights along the input
  dimension (32 by default), one scale per group, and either
  - ``zero_point=False`` (symmetric, as GGML's Q4_0): ``scale = m / -8`` where ``m`` is the
    group's value of largest magnitude (so it lands exactly on -8 and the whole -8..7 range is
    used), ``w ~ q * scale``; or
  - ``zero_point=True`` (asymmetric, as GPTQ/AWQ): the group's range ``[min(lo, 0),
    max(hi, 0)]`` over 0..15, ``scale = range / 15``, an integer zero point ``z`` in 0..15,
    ``w ~ (q - z) * scale``; zero stays exactly representable.
* GGML block types (``"Q8_0"``, ``"Q4_0"``, ``"Q4_1"``, ``"Q5_0"``, ``"Q5_1"``, ``"Q4_K"``):
  the Linears become :class:`~gradient.quant.linear.QuantizedLinear` layers over blocks written
  as llama.cpp's reference quantizer writes them (:func:`quantize_q4_k` for Q4_K, bit-exact with
  ``quantize_row_q4_K_ref``). Q4_K needs ``in_features % 256 == 0``; other layers fall back to
  Q5_0, as ``llama-quantize`` does (with a warning).

Storage (a :class:`PackedWeight`): ``qweight`` (int8 ``(out, in)``, or uint8 ``(out, in / 2)``
for int4: two codes per byte), float16 ``scales`` of shape ``(out, in / group_size)`` (float16
as GGML, GPTQ and AWQ store them: half the overhead of float32; codes are computed against the
rounded scale) and, with zero points, uint8 ``zeros`` of the same shape. Int4 codes are packed
two per byte in blocks of 32 as GGML's Q4_0 (byte ``j`` of a block: code ``j`` in the low
nibble, code ``j + 16`` in the high one), so int4 group sizes are multiples of 32. Symmetric
codes are stored offset by 8 (0..15), so every int4 weight decodes as ``(nibble - z) * scale``
with ``z = 8`` when there are no zero points.

The products: a :class:`WeightOnlyLinear` repacks its weight once for the kernels of
:mod:`gradient.quant.interleaved`, which read the GGML types (16 rows interleaved, integer
dot products with int8 activations or exact float32 ones): symmetric int4 is Q4_0's
arithmetic, int4 with zero points Q4_1's (the minimum ``-scale * z`` formed exactly from the
zero point), int8 Q8_0's, each 32-value block with its group's scale. Int8 rows that are
not whole blocks of 32 (per-channel scales over ``in_features`` = 100, say) have kernels of
their own here, as :mod:`gradient.quant.matmul`'s: few rows dotted straight from the codes,
many through dequantized tiles and BLAS. Float32 accumulation.

Example::

    >>> import gradient.quant as Q
    >>> q8 = Q.quantize(model, "int8")                                # a copy; model unchanged
    >>> q4 = Q.quantize(model, "int4", group_size=64, zero_point=True)
    >>> q4.generate(ids, max_new_tokens=20)
    >>> Q.quantize(model, "Q4_0", inplace=True)                       # QuantizedLinear layers
"""

from __future__ import annotations

import copy
import dataclasses
import fnmatch
import warnings

import numba
import numpy as np

from .. import kernels
from ..backends.cpu_compile import compile_kernel
from ..backends.cpu_reduce import LANES, fold_lanes
from ..errors import ArgumentTypeError, ArgumentValueError, ShapeError
from ..nn.module import Module
from ..nn.modules.linear import Linear
from ..nn.parameter import Parameter
from ..ops.creation import from_numpy
from ..tensor import Tensor
from . import linear as _ql
from . import matmul as _qm
from .device_blocks import DeviceArrays
from .ggml import GGMLType, UnsupportedQuantTypeError
from .interleaved import (ACTIVATIONS, InterleavedWeight, interleaved_matmul,
                          interleaved_matmul_t, lowered_product)
from .matmul import _f16

__all__ = ["quantize", "quantize_model", "quantize_weight", "quantize_q4_k", "quantize_blocks",
           "PackedWeight", "WeightOnlyLinear", "weight_only_matmul", "pack_int4", "unpack_int4",
           "SCHEMES", "GGML_SCHEMES", "DEFAULT_INT4_GROUP"]

#: The weight-only schemes (WeightOnlyLinear layers).
SCHEMES = ("int8", "int4")
#: The GGML block types :func:`quantize` can write (QuantizedLinear layers).
GGML_SCHEMES = ("Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K")
#: Group size of int4 when none is given: 32 fits every width GGML's blocks fit (SmolLM2's 576
#: is not a multiple of 128) and is the most accurate of the usual 32/64/128.
DEFAULT_INT4_GROUP = 32


# ----------------------------------------------------------------------------- the format
def pack_int4(codes: np.ndarray) -> np.ndarray:
    """Pack 4-bit codes (integers 0..15, shape (rows, in_features), in_features a multiple of
    32) two per byte, in blocks of 32 as GGML's Q4_0: byte ``j`` of a block holds code ``j``
    (low nibble) and code ``j + 16`` (high nibble). Returns uint8 (rows, in_features / 2);
    :func:`unpack_int4` inverts it.

    Example: ``pack_int4(np.arange(32)[None])[0, :2]`` is ``[0x00 | 16 << 4, 0x01 | 17 << 4]``
    """
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[1] % 32:
        raise ShapeError(f"pack_int4: expected codes of shape (rows, in_features) with "
                         f"in_features a multiple of 32 (the packing block), got {codes.shape}")
    if codes.size and (codes.min() < 0 or codes.max() > 15):
        raise ArgumentValueError(
            f"pack_int4: codes must lie in 0..15, got {codes.min()}..{codes.max()}")
    rows, k = codes.shape
    c = codes.astype(np.uint8).reshape(rows, k // 32, 2, 16)
    return np.ascontiguousarray((c[:, :, 0] | (c[:, :, 1] << 4)).reshape(rows, k // 2))


def unpack_int4(packed: np.ndarray) -> np.ndarray:
    """The codes (uint8 0..15, shape (rows, 2 * packed.shape[1])) that :func:`pack_int4`
    packed.

    Example: ``unpack_int4(pack_int4(codes))`` equals ``codes``
    """
    packed = np.asarray(packed, dtype=np.uint8)
    if packed.ndim != 2 or packed.shape[1] % 16:
        raise ShapeError(f"unpack_int4: expected packed codes of shape (rows, 16 * blocks), got "
                         f"{packed.shape}")
    rows, half = packed.shape
    p = packed.reshape(rows, -1, 1, 16)
    return np.concatenate([p & 15, p >> 4], axis=2).reshape(rows, 2 * half)


def _check_groups(shape, group_size, where: str) -> tuple[int, int]:
    if len(shape) != 2:
        raise ShapeError(f"{where}: expected a 2-d (out_features, in_features) array, got shape "
                         f"{tuple(shape)}")
    if isinstance(group_size, bool) or not isinstance(group_size, (int, np.integer)) or \
            group_size < 1:
        raise ArgumentValueError(f"{where}: group_size must be a positive int, got {group_size!r}")
    rows, k = shape
    if k % group_size:
        divisors = [g for g in (32, 64, 128, 256) if k % g == 0]
        raise ShapeError(f"{where}: in_features={k} is not a multiple of group_size="
                         f"{group_size}; groups cannot straddle rows. Use a group size that "
                         f"divides {k}" + (f" (e.g. {', '.join(map(str, divisors))})"
                                           if divisors else ""))
    return int(rows), int(k)


@dataclasses.dataclass(frozen=True, eq=False)
class PackedWeight:
    """A weight of shape (out_features, in_features) quantized by :func:`quantize_weight`.

    ``qweight``: int8 (out, in) codes for 8 bits; uint8 (out, in / 2), two codes per byte (see
    :func:`pack_int4`) for 4 bits. ``scales``: float16 (out, in / group_size), or bfloat16 or
    float32 as a checkpoint stores them (:mod:`gradient.quant.formats`). ``zeros``: uint8
    zero points of the same shape, or None (symmetric). The arrays are read-only.
    ``grid_bits``: 1 to 3 where codes of that width (with their zero points) sit in the int4
    layout, as GPTQ's 3-bit weights do; None where the codes use the layout's ``bits``.

    Example: ``quantize_weight(w, bits=4, group_size=32).dequantize()`` is ``w`` up to rounding
    """

    qweight: np.ndarray
    scales: np.ndarray
    zeros: np.ndarray | None
    bits: int
    group_size: int
    in_features: int
    grid_bits: int | None = None

    @property
    def code_bits(self) -> int:
        """The width of the codes: ``grid_bits`` where set, else ``bits``."""
        return self.grid_bits or self.bits

    @property
    def out_features(self) -> int:
        return int(self.qweight.shape[0])

    @property
    def nbytes(self) -> int:
        """Bytes of the codes, scales and zero points."""
        return int(self.qweight.nbytes + self.scales.nbytes +
                   (self.zeros.nbytes if self.zeros is not None else 0))

    @property
    def bits_per_weight(self) -> float:
        return 8.0 * self.nbytes / max(1, self.out_features * self.in_features)

    def codes(self) -> np.ndarray:
        """The integer codes, one per weight, as int32 (out, in)."""
        if self.bits == 8:
            return self.qweight.astype(np.int32)
        return unpack_int4(self.qweight).astype(np.int32)

    def dequantize(self) -> np.ndarray:
        """The float32 (out, in) weight the codes stand for: ``(q - z) * scale`` per group,
        computed with NumPy (the reference the kernels are tested against)."""
        q = self.codes()
        m, k, g = self.out_features, self.in_features, self.group_size
        if self.zeros is not None:
            z = self.zeros.astype(np.int32)
        else:
            z = np.full((m, k // g), 0 if self.bits == 8 else 8, np.int32)
        q = (q.reshape(m, k // g, g) - z[..., None]).astype(np.float32)
        return (q * self.scales.astype(np.float32)[..., None]).reshape(m, k)


def quantize_weight(weight, bits: int = 8, group_size: int | None = None,
                    zero_point: bool = False) -> PackedWeight:
    """Quantize a float (out_features, in_features) weight to 8 or 4 bits (see the module
    docstring for the exact rules). ``group_size=None``: one group per row for 8 bits (per
    output channel), :data:`DEFAULT_INT4_GROUP` for 4 bits. ``zero_point`` is for 4 bits only.

    Raises ShapeError when ``in_features`` is not a multiple of ``group_size``.

    Example::

        >>> p = quantize_weight(np.random.randn(64, 256).astype(np.float32), bits=4,
        ...                     group_size=64, zero_point=True)
        >>> p.qweight.shape, p.scales.shape, p.zeros.shape
        ((64, 128), (64, 4), (64, 4))
    """
    if bits not in (8, 4):
        raise ArgumentValueError(f"quantize_weight: bits must be 8 or 4, got {bits!r}")
    if bits == 8 and zero_point:
        raise ArgumentValueError(
            "quantize_weight: int8 is symmetric (its per-channel error is already "
            "under 0.4% of the row's largest weight); zero points are for int4: "
            "pass zero_point=False")
    w = np.asarray(weight, dtype=np.float32)
    if w.ndim != 2:
        raise ShapeError(f"quantize_weight: expected a 2-d (out_features, in_features) weight, "
                         f"got shape {w.shape}")
    m, k = w.shape
    if group_size is None:
        group_size = max(k, 1) if bits == 8 else DEFAULT_INT4_GROUP
    _check_groups(w.shape, group_size, "quantize_weight")
    if bits == 4 and group_size % 32:
        raise ArgumentValueError(
            f"quantize_weight: int4 group_size must be a multiple of 32 (codes are "
            f"packed in blocks of 32, as GGML's), got {group_size}")
    if not np.isfinite(w).all():
        raise ArgumentValueError(
            "quantize_weight: the weight has inf or NaN values; they cannot be "
            "quantized")
    g = w.reshape(m, k // group_size, group_size)
    zeros = None
    if bits == 8:
        scale = np.abs(g).max(axis=-1) / np.float32(127)
        lo, hi = -127, 127
    elif zero_point:
        low = np.minimum(g.min(axis=-1), 0)
        scale = (np.maximum(g.max(axis=-1), 0) - low) / np.float32(15)
        lo, hi = 0, 15
    else:
        signed_max = np.take_along_axis(g, np.abs(g).argmax(axis=-1)[..., None], axis=-1)[..., 0]
        scale = signed_max / np.float32(-8)
        lo, hi = -8, 7
    scales = scale.astype(np.float16)
    if not np.isfinite(scales).all():
        raise ArgumentValueError(
            "quantize_weight: a scale exceeds float16's range (65504): weights "
            "of magnitude above ~5e5 (int4) or ~8e6 (int8) cannot be stored; "
            "rescale the weight")
    s = scales.astype(np.float32)
    inv = _ql._inverse(s)[..., None]                 # 0 where the scale is 0 (an all-zero group)
    if zero_point:
        z = np.clip(np.rint(-low * _ql._inverse(s)), 0, 15)
        q = np.clip(np.rint(g * inv) + z[..., None], lo, hi)
        zeros = z.astype(np.uint8)
    else:
        q = np.clip(np.rint(g * inv), lo, hi)
    q = q.reshape(m, k)
    if bits == 8:
        qweight = q.astype(np.int8)
    else:
        qweight = pack_int4((q + (0 if zero_point else 8)).astype(np.uint8))
    return PackedWeight(_readonly(qweight), _readonly(scales), None if zeros is None else
                        _readonly(zeros), bits, int(group_size), int(k))


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


# ----------------------------------------------------------------------------- kernels
# The products read the weight repacked for gradient.quant.interleaved's kernels (the GGML
# types' own: int4 as Q4_0, or Q4_1 with the zero points; int8 as Q8_0) wherever its groups
# are whole 32-value blocks: every int4 weight, and int8 ones whose rows divide into blocks.
# What is left, int8 rows of another length (per-channel scales over in_features = 100, say),
# goes through the kernels below, which have the structure of gradient.quant.matmul's.

def _interleaved(p: PackedWeight) -> bool:
    """Whether the interleaved kernels take ``p``: its groups are whole 32-value blocks."""
    return p.group_size % 32 == 0


def _repacked(p: PackedWeight) -> InterleavedWeight:
    return InterleavedWeight.from_groups(p.qweight, p.scales, p.zeros, p.bits, p.in_features)


@compile_kernel(inline=True)
def _decode_row(qrow, srow, w, g):
    """One int8 weight row (codes ``qrow``, the float16 scales' bytes ``srow``) as float32
    ``w``, ``q * scale`` group by group."""
    for gi in range(w.size // g):
        s = _f16(srow[2 * gi], srow[2 * gi + 1])
        codes = qrow[gi * g:gi * g + g]
        out = w[gi * g:gi * g + g]
        for j in range(g):
            out[j] = np.float32(np.int8(codes[j])) * s


@compile_kernel
def _matvec_rows(qw, sc, x, y, r0, r1, g):
    """``y[:, r] = x @ w_r`` for r0 <= r < r1 without decoding the rows: per group, the codes'
    dot product with ``x`` in float32 (in lanes, see :mod:`gradient.backends.cpu_reduce`),
    times the group's scale."""
    n, k = x.shape
    full = g - g % LANES
    acc = np.empty(LANES, np.float32)
    for r in range(r0, r1):
        qrow, srow = qw[r], sc[r]
        for i in range(n):
            total = np.float32(0.0)
            for gi in range(k // g):
                base = gi * g
                acc[:] = -0.0
                for j0 in range(base, base + full, LANES):
                    for lane in range(LANES):
                        j = j0 + lane
                        acc[lane] += np.float32(np.int8(qrow[j])) * x[i, j]
                part = fold_lanes(acc)
                for j in range(base + full, base + g):
                    part += np.float32(np.int8(qrow[j])) * x[i, j]
                total += part * _f16(srow[2 * gi], srow[2 * gi + 1])
            y[i, r] = total


@compile_kernel(parallel=True)
def _matvec_parallel(qw, sc, x, y, n_chunks, g):
    rows = qw.shape[0]
    step = (rows + n_chunks - 1) // n_chunks
    for c in numba.prange(n_chunks):
        _matvec_rows(qw, sc, x, y, c * step, min(rows, (c + 1) * step), g)


@compile_kernel
def _dequant_rows(qw, sc, r0, r1, out, g):
    for r in range(r0, r1):
        _decode_row(qw[r], sc[r], out[r - r0], g)


@compile_kernel(parallel=True)
def _dequant_parallel(qw, sc, r0, r1, out, n_chunks, g):
    step = (r1 - r0 + n_chunks - 1) // n_chunks
    for c in numba.prange(n_chunks):
        a = r0 + c * step
        _dequant_rows(qw, sc, a, min(r1, a + step), out[a - r0:], g)


def _kernel_args(p: PackedWeight) -> tuple:
    """The codes and the scales' bytes as the kernels take them: read-only uint8 arrays, so
    numba compiles each kernel once (a deep copy of a layer makes its arrays writeable)."""
    return (_readonly_view(p.qweight.view(np.uint8)),
            _readonly_view(p.scales.view(np.uint8)))      # (out, 2 * groups)


def _readonly_view(a: np.ndarray) -> np.ndarray:
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


def _dequant_into(p: PackedWeight, r0: int, r1: int, out: np.ndarray) -> None:
    qw, sc = _kernel_args(p)
    n_threads = _qm._threads((r1 - r0) * p.in_features)
    if n_threads > 1:
        _dequant_parallel(qw, sc, r0, r1, out, min(r1 - r0, n_threads), p.group_size)
    else:
        _dequant_rows(qw, sc, r0, r1, out, p.group_size)


#: Weights from which a product of a few rows runs on numba's threads: these kernels run far
#: below the memory's speed, so threads pay from small matrices on.
PARALLEL_MIN_CODES = 1 << 16


def _matmul_2d(x, p: PackedWeight) -> np.ndarray:
    """``x @ W.T`` in float32 for x (N, in_features), W int8 rows not in 32-value blocks."""
    m, k = p.out_features, p.in_features
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.flags.writeable:       # one array type for numba
        x = x.view()
        x.flags.writeable = False
    n = x.shape[0]
    if n == 0 or m == 0 or k == 0:
        return np.zeros((n, m), dtype=np.float32)
    if n <= _qm.SMALL_BATCH:
        qw, sc = _kernel_args(p)
        y = np.empty((n, m), dtype=np.float32)
        n_threads = _qm._threads(m * k, PARALLEL_MIN_CODES)
        if n_threads > 1:
            _matvec_parallel(qw, sc, x, y, min(m, 2 * n_threads), p.group_size)
        else:
            _matvec_rows(qw, sc, x, y, 0, m, p.group_size)
        return y
    # prefill: dequantized tiles of rows into BLAS, as quantized_matmul
    return _qm.tiled_matmul(x, m, k, lambda r0, r1, w: _dequant_into(p, r0, r1, w))


def _matmul_t_2d(g, p: PackedWeight) -> np.ndarray:
    """``g @ W`` for g (N, out_features): the input gradient, tile by tile."""
    g = np.ascontiguousarray(g, dtype=np.float32)
    return _qm.tiled_matmul_t(g, p.out_features, p.in_features,
                              lambda r0, r1, w: _dequant_into(p, r0, r1, w))


def weight_only_matmul(x, packed: PackedWeight, activations: str = "float32") -> np.ndarray:
    """``x @ W.T`` in float32 with ``W`` given by its codes (a :class:`PackedWeight`); ``x``
    has shape (..., in_features), the result (..., out_features). ``activations``: as
    :class:`WeightOnlyLinear`'s. (Each call repacks the codes for the kernels: a layer,
    :class:`WeightOnlyLinear`, does that once.)

    Example: ``y = weight_only_matmul(x, quantize_weight(w, bits=4))``
    """
    x = np.asarray(x)
    if x.ndim == 0 or x.shape[-1] != packed.in_features:
        raise ShapeError(f"weight_only_matmul: x of shape {x.shape} does not match a weight of "
                         f"shape ({packed.out_features}, {packed.in_features})")
    x2 = np.ascontiguousarray(x.reshape(-1, x.shape[-1]), dtype=np.float32)
    if _interleaved(packed):
        y = interleaved_matmul(x2, _repacked(packed), _activations(activations))
    else:
        y = _matmul_2d(x2, packed)
    return y.reshape(x.shape[:-1] + (packed.out_features,))


def _activations(activations: str) -> str:
    if activations not in ACTIVATIONS:
        raise ArgumentValueError(f"activations must be one of {ACTIVATIONS}, got {activations!r}")
    return activations


# ----------------------------------------------------------------------------- the layer
class WeightOnlyLinear(_ql._QuantizedLayer):
    """``y = x @ W.T + bias`` with ``W`` stored as int8 or packed int4 codes and float16
    scales, multiplied by numba kernels that read the codes directly.

    The layer is built from a :class:`PackedWeight` (:func:`quantize_weight`, GPTQ) and keeps
    only the weight repacked for :mod:`gradient.quant.interleaved`'s kernels (``packed``, an
    :class:`~gradient.quant.interleaved.InterleavedWeight`: the codes of 16 rows interleaved,
    each 32-value block with its group's scale and zero point), so it decodes at the speed of
    the GGML types of the same bits (int4 as Q4_0/Q4_1, int8 as Q8_0); int8 rows that are
    not whole 32-value blocks keep the :class:`PackedWeight` (``packed`` then is that).
    :meth:`packed_weight` gives the :class:`PackedWeight` back.

    ``activations``: ``"float32"`` (the default) multiplies the exact weights with float32
    x; ``"int8"`` quantizes each 32 values of x to int8 first, as llama.cpp does (faster for
    many rows; see :class:`~gradient.quant.linear.QuantizedLinear`); ``"int8_per_token"``
    with one scale a row (SmoothQuant's W8A8).

    ``input_order``: a permutation of the input channels in which the codes hold them (GPTQ's
    activation order, where a group is not consecutive channels): the product reads
    ``x[..., input_order]``. Such a layer is not compiled into a captured step.

    On a GPU (CUDA) the codes, scales and zero points go up once, on the first product there,
    and the backend's ``grouped_matmul`` multiplies with them (float32 products of the exact
    weights; many rows of x through the weight dequantized once and cuBLAS).

    As :class:`~gradient.quant.linear.QuantizedLinear`: the weight is frozen and not in
    ``parameters()``/``state_dict()`` (only ``bias`` is); gradients flow to the input (the
    backward is ``grad @ W``, tile by tile); the product is computed in float32 whatever the
    input dtype and cast back to it; ``model.to(dtype)`` does not touch the codes.

    Example::

        >>> layer = WeightOnlyLinear.from_linear(nn.Linear(256, 64), bits=4, group_size=64)
        >>> layer(gradient.randn(3, 256)).shape
        (3, 64)
    """

    def __init__(self, packed: PackedWeight, bias=None, activations: str = "float32",
                 input_order=None):
        super().__init__()
        if not isinstance(packed, PackedWeight):
            raise ArgumentTypeError(
                f"WeightOnlyLinear: expected a PackedWeight (from quantize_weight), "
                f"got {type(packed).__name__}")
        self.in_features, self.out_features = packed.in_features, packed.out_features
        if input_order is not None:
            input_order = np.asarray(input_order, dtype=np.int64)
            if not np.array_equal(np.sort(input_order), np.arange(self.in_features)):
                raise ShapeError(f"WeightOnlyLinear: input_order must be a permutation of the "
                                 f"{self.in_features} input channels")
            input_order = _readonly(input_order)
        self.input_order = input_order
        self.bits, self.group_size = packed.bits, packed.group_size
        self.grid_bits = packed.grid_bits
        self.zero_point = packed.zeros is not None
        self.activations = _activations(activations)
        if not _interleaved(packed) and packed.scales.dtype != np.float16:
            # (the kernels of rows not in blocks read float16 scales: a checkpoint's others
            # are rounded to them)
            packed = dataclasses.replace(packed, scales=_readonly(packed.scales.astype(
                np.float16)))
        self.packed = _repacked(packed) if _interleaved(packed) else packed
        self._device_weight = DeviceArrays()    # uploaded by the first product on a GPU
        if bias is None:
            self.register_parameter("bias", None)
        else:
            if isinstance(bias, Tensor):
                bias = bias.detach().numpy()
            bias = np.array(bias, dtype=np.float32)
            if bias.shape != (self.out_features,):
                raise ShapeError(f"WeightOnlyLinear: bias must have shape ({self.out_features},), "
                                 f"got {bias.shape}")
            self.bias = Parameter(from_numpy(bias))

    @classmethod
    def from_linear(cls, linear, bits: int = 8, group_size: int | None = None,
                    zero_point: bool = False, activations: str = "float32") -> "WeightOnlyLinear":
        """Quantize a float :class:`gradient.nn.Linear` (see :func:`quantize_weight`).

        Example: ``WeightOnlyLinear.from_linear(model.lm_head, bits=8)``
        """
        weight = np.asarray(linear.weight.detach().numpy(), dtype=np.float32)
        bias = linear.bias.detach().numpy() if linear.bias is not None else None
        return cls(quantize_weight(weight, bits, group_size, zero_point), bias, activations)

    def packed_weight(self) -> PackedWeight:
        """The weight as a :class:`PackedWeight` (codes, scales, zero points): what the layer
        was built from, read back from its repacked form (its input channels in
        ``input_order``, where the layer has one).

        Example: ``layer.packed_weight().dequantize()``
        """
        if isinstance(self.packed, PackedWeight):
            return self.packed
        codes, scales, zeros = self.packed.row_blocks()
        per = self.group_size // 32                   # the blocks of a group share factors
        m = self.out_features
        qweight = codes.reshape(m, -1)
        if self.bits == 8:
            qweight = (qweight ^ np.uint8(128)).view(np.int8)
        return PackedWeight(_readonly(qweight), _readonly(scales[:, ::per]),
                            None if zeros is None else _readonly(zeros[:, ::per].view(np.uint8)),
                            self.bits, self.group_size, self.in_features, self.grid_bits)

    @property
    def nbytes(self) -> int:
        """Bytes of the quantized weight as held (codes, scales, zero points)."""
        return self.packed.nbytes

    # the protocol of gradient.quant.linear's autograd Functions (as QuantizedLinear's)
    def _product(self, x: np.ndarray) -> np.ndarray:
        if self.input_order is not None:      # the codes hold the channels in this order
            x = np.ascontiguousarray(np.take(x, self.input_order, axis=-1), dtype=np.float32)
        if isinstance(self.packed, PackedWeight):
            return _matmul_2d(x, self.packed)
        return kernels.call("interleaved_matmul", "cpu", x, self.packed, self.activations)

    def _prepared_product(self, x: np.ndarray):
        if isinstance(self.packed, PackedWeight) or self.input_order is not None:
            return None
        kernel = kernels.prepare("interleaved_matmul", "cpu", x, self.packed, self.activations)
        return None if kernel is None else (kernel, (self.packed, self.activations))

    def _lowered_product(self, x, rows, out_shape):
        if isinstance(self.packed, PackedWeight) or self.input_order is not None:
            return None
        return lowered_product(x, rows, self.packed, self.activations, out_shape)

    def _device_product(self, backend, x):
        """``x @ W.T`` on a GPU backend with a grouped_matmul kernel, from the codes, scales and
        zero points uploaded there once; None otherwise (the product then runs on the host)."""
        kernel = kernels.lookup("grouped_matmul", backend)
        if kernel is None:
            return None
        codes, scales, zeros, order = self._device_weight.on(backend, self._device_arrays)
        return kernel(x, codes, scales, zeros, self.bits, self.group_size, order)

    def _device_arrays(self) -> tuple:
        """What grouped_matmul reads: the PackedWeight's codes, scales (float16 as stored,
        any other dtype as float32: exact), zero points, and the input order."""
        p = self.packed_weight()
        scales = p.scales if p.scales.dtype == np.float16 else p.scales.astype(np.float32)
        return p.qweight, scales, p.zeros, self.input_order

    def _product_t(self, g: np.ndarray) -> np.ndarray:
        if isinstance(self.packed, PackedWeight):
            out = _matmul_t_2d(g, self.packed)
        else:
            out = interleaved_matmul_t(g, self.packed)
        if self.input_order is None:
            return out
        unordered = np.empty_like(out)
        unordered[:, self.input_order] = out
        return unordered

    def exact(self) -> "WeightOnlyLinear":
        """This layer with ``activations="float32"`` (itself when it already is), sharing
        the weight."""
        if self.activations == "float32":
            return self
        exact = copy.copy(self)
        exact.__dict__["activations"] = "float32"
        return exact

    def dequantize(self) -> Tensor:
        """The weight as a float32 (out_features, in_features) tensor (a new array), its
        input channels in the layer's order."""
        if isinstance(self.packed, InterleavedWeight):
            out = self.packed.dequantize()
        else:
            out = np.empty((self.out_features, self.in_features), dtype=np.float32)
            if out.size:
                _dequant_into(self.packed, 0, self.out_features, out)
        if self.input_order is not None:
            unordered = np.empty_like(out)
            unordered[:, self.input_order] = out
            out = unordered
        return from_numpy(out)

    def extra_repr(self) -> str:
        zp = ", zero_point=True" if self.zero_point else ""
        act = "" if self.activations == "float32" else f", activations={self.activations}"
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bits={self.grid_bits or self.bits}, group_size={self.group_size}{zp}{act}, "
                f"bias={self.bias is not None}, {_ql._size(self.nbytes)}")


# ----------------------------------------------------------------------------- Q4_K writer
# llama.cpp's quantize_row_q4_K_ref (ggml-quants.c), the quantizer llama-quantize uses without
# an importance matrix: per 32-value sub-block a weighted least-squares search for a scale and
# a min (make_qkx2_quants: 21 candidate scales around (max - min) / 15, weights |x| + rms),
# then the 8 scales and 8 mins of each 256-value super-block quantized to 6 bits against
# float16 super-scales, and the codes recomputed against those. gguf.quants cannot write
# Q4_K, so the tests check it byte for byte against llama.cpp's own function.
# Every operation below is a float32 operation as in the C code (numba would otherwise widen
# int * float32 to float64, and the bytes would drift).

_F = np.float32


@compile_kernel(inline=True)
def _nearest_int(v):
    # ggml's nearest_int: round half to even (valid for |v| < 2**22; larger values are clamped
    # by every caller anyway)
    v = min(max(v, _F(-4194303.0)), _F(4194303.0))
    return np.int32(np.rint(v))


@compile_kernel
def _make_qkx2_quants(x, weights, L, laux, nmax, rmin, rdelta, nstep):
    """(scale, -min) of one sub-block, its codes in L: ggml's make_qkx2_quants (use_mad=false)."""
    n = x.size
    mn = x[0]
    mx = x[0]
    sum_w = weights[0]
    sum_x = _F(sum_w * x[0])
    for i in range(1, n):
        if x[i] < mn:
            mn = x[i]
        if x[i] > mx:
            mx = x[i]
        w = weights[i]
        sum_w = _F(sum_w + w)
        sum_x = _F(sum_x + _F(w * x[i]))
    if mn > 0:
        mn = _F(0.0)
    if mx == mn:
        for i in range(n):
            L[i] = 0
        return _F(0.0), _F(-mn)
    fmax = _F(nmax)
    iscale = _F(fmax / _F(mx - mn))
    scale = _F(_F(1.0) / iscale)
    best_error = _F(0.0)
    for i in range(n):
        l = min(max(_nearest_int(_F(iscale * _F(x[i] - mn))), 0), nmax)
        L[i] = l
        diff = _F(_F(_F(scale * _F(l)) + mn) - x[i])
        best_error = _F(best_error + _F(weights[i] * _F(diff * diff)))
    for step in range(nstep + 1):
        iscale = _F(_F(_F(rmin + _F(rdelta * _F(step))) + fmax) / _F(mx - mn))
        sum_l = _F(0.0)
        sum_l2 = _F(0.0)
        sum_xl = _F(0.0)
        for i in range(n):
            l = min(max(_nearest_int(_F(iscale * _F(x[i] - mn))), 0), nmax)
            laux[i] = l
            w = weights[i]
            wl = _F(w * _F(l))
            sum_l = _F(sum_l + wl)
            sum_l2 = _F(sum_l2 + _F(wl * _F(l)))
            sum_xl = _F(sum_xl + _F(wl * x[i]))
        D = _F(_F(sum_w * sum_l2) - _F(sum_l * sum_l))
        if D > 0:
            this_scale = _F(_F(_F(sum_w * sum_xl) - _F(sum_x * sum_l)) / D)
            this_min = _F(_F(_F(sum_l2 * sum_x) - _F(sum_l * sum_xl)) / D)
            if this_min > 0:
                this_min = _F(0.0)
                this_scale = _F(sum_xl / sum_l2)
            cur_error = _F(0.0)
            for i in range(n):
                diff = _F(_F(_F(this_scale * _F(laux[i])) + this_min) - x[i])
                cur_error = _F(cur_error + _F(weights[i] * _F(diff * diff)))
            if cur_error < best_error:
                for i in range(n):
                    L[i] = laux[i]
                best_error = cur_error
                scale = this_scale
                mn = this_min
    return scale, _F(-mn)


@compile_kernel
def _q4_k_search(x, L, ls, lm, d, dmin):
    """First pass over super-blocks x (nb, 256): codes L, 6-bit scales ls and mins lm, and the
    float32 super-scales d and dmin (rounded to float16 by the caller)."""
    weights = np.empty(32, np.float32)
    laux = np.empty(32, np.uint8)
    scales = np.empty(8, np.float32)
    mins = np.empty(8, np.float32)
    for i in range(x.shape[0]):
        max_scale = _F(0.0)
        max_min = _F(0.0)
        for j in range(8):
            xs = x[i, 32 * j:32 * j + 32]
            sum_x2 = _F(0.0)
            for l in range(32):
                sum_x2 = _F(sum_x2 + _F(xs[l] * xs[l]))
            av_x = _F(np.sqrt(_F(sum_x2 / _F(32.0))))
            for l in range(32):
                weights[l] = _F(av_x + abs(xs[l]))
            sc, mn = _make_qkx2_quants(xs, weights, L[i, 32 * j:32 * j + 32], laux, 15,
                                       _F(-1.0), _F(0.1), 20)
            scales[j] = sc
            mins[j] = mn
            if sc > max_scale:
                max_scale = sc
            if mn > max_min:
                max_min = mn
        inv_scale = _F(_F(63.0) / max_scale) if max_scale > 0 else _F(0.0)
        inv_min = _F(_F(63.0) / max_min) if max_min > 0 else _F(0.0)
        for j in range(8):
            # the C code stores nearest_int in a uint8 before MIN(63, .): keep its low byte
            ls[i, j] = min(63, _nearest_int(_F(inv_scale * scales[j])) & 255)
            lm[i, j] = min(63, _nearest_int(_F(inv_min * mins[j])) & 255)
        d[i] = _F(max_scale / _F(63.0))
        dmin[i] = _F(max_min / _F(63.0))


@compile_kernel
def _q4_k_codes(x, L, ls, lm, d16, dmin16):
    """Second pass: the codes against the float16 super-scales (d16, dmin16 as float32)."""
    for i in range(x.shape[0]):
        for j in range(8):
            dd = _F(d16[i] * _F(ls[i, j]))
            if dd == 0:
                continue
            dm = _F(dmin16[i] * _F(lm[i, j]))
            for l in range(32):
                v = _nearest_int(_F(_F(x[i, 32 * j + l] + dm) / dd))
                L[i, 32 * j + l] = min(max(v, 0), 15)


def quantize_q4_k(weight) -> np.ndarray:
    """Q4_K blocks of a float (out_features, in_features) weight, ``in_features`` a multiple of
    256, as llama.cpp's ``quantize_row_q4_K_ref`` writes them (what ``llama-quantize`` does
    without an importance matrix): uint8 of shape (out_features, in_features / 256 * 144).

    Example: ``QuantizedLinear.from_blocks(quantize_q4_k(w), "Q4_K", 512, 64)``
    """
    w = np.asarray(weight, dtype=np.float32)
    if w.ndim != 2:
        raise ShapeError(f"quantize_q4_k: expected a 2-d weight (out_features, in_features), got "
                         f"shape {w.shape}")
    m, k = w.shape
    if k % 256:
        raise ShapeError(f"quantize_q4_k: Q4_K stores rows in super-blocks of 256 values; "
                         f"in_features={k} is not a multiple of 256 (use Q4_0/Q5_0, which "
                         f"need multiples of 32)")
    if not np.isfinite(w).all():
        raise ArgumentValueError("quantize_q4_k: the weight has inf or NaN values")
    x = np.ascontiguousarray(w).reshape(-1, 256)
    nb = x.shape[0]
    L = np.zeros((nb, 256), np.uint8)
    ls, lm = np.zeros((nb, 8), np.uint8), np.zeros((nb, 8), np.uint8)
    d, dmin = np.zeros(nb, np.float32), np.zeros(nb, np.float32)
    if nb:
        _q4_k_search(x, L, ls, lm, d, dmin)
    d16, dmin16 = d.astype(np.float16), dmin.astype(np.float16)
    if nb:
        _q4_k_codes(x, L, ls, lm, d16.astype(np.float32), dmin16.astype(np.float32))
    # 12 bytes of scales: bytes 0..3 the scales 0..3 (+ top 2 bits of scales 4..7), 4..7 the
    # mins 0..3 (+ top bits of mins 4..7), 8..11 the low nibbles of scales and mins 4..7
    packed_scales = np.concatenate([ls[:, :4] | ((ls[:, 4:] >> 4) << 6),
                                    lm[:, :4] | ((lm[:, 4:] >> 4) << 6),
                                    (ls[:, 4:] & 15) | ((lm[:, 4:] & 15) << 4)], axis=1)
    q = L.reshape(nb, 4, 2, 32)                   # 64 values: 32 low nibbles, 32 high
    qs = (q[:, :, 0] | (q[:, :, 1] << 4)).reshape(nb, 128)
    blocks = np.concatenate([d16.view(np.uint8).reshape(nb, 2), dmin16.view(np.uint8).reshape(
        nb, 2), packed_scales.astype(np.uint8), qs], axis=1)
    return np.ascontiguousarray(blocks).reshape(m, -1)


def quantize_blocks(weight, qtype) -> np.ndarray:
    """GGML blocks of a float weight: :func:`gradient.quant.linear.quantize`'s types plus Q4_K.

    Example: ``quantize_blocks(w, "Q4_K").shape == (w.shape[0], w.shape[1] // 256 * 144)``
    """
    if _ql._as_type(qtype) == GGMLType.Q4_K:
        return quantize_q4_k(weight)
    return _ql.quantize(weight, qtype)


# ----------------------------------------------------------------------------- models
@dataclasses.dataclass(frozen=True)
class _Scheme:
    kind: str                  # "int8", "int4" or "ggml"
    bits: int = 0
    group_size: int | None = None
    zero_point: bool = False
    qtype: GGMLType | None = None


def _parse_scheme(scheme, group_size, zero_point) -> _Scheme:
    if not isinstance(scheme, str):
        raise ArgumentTypeError(
            f"quantize: scheme must be a string ('int8', 'int4' or a GGML type "
            f"such as 'Q4_0'), got {type(scheme).__name__}")
    name = scheme.lower()
    if name in SCHEMES:
        bits = 8 if name == "int8" else 4
        if bits == 8 and zero_point:
            raise ArgumentValueError("quantize: int8 is symmetric; zero_point=True is for int4")
        return _Scheme(name, bits, group_size, bool(zero_point))
    if scheme.upper() in GGML_SCHEMES:
        if group_size is not None or zero_point:
            raise ArgumentValueError(
                f"quantize: GGML type {scheme.upper()} has a fixed block layout; "
                f"group_size and zero_point apply to 'int8'/'int4' only")
        return _Scheme("ggml", qtype=GGMLType[scheme.upper()])
    raise UnsupportedQuantTypeError(
        f"quantize: unknown scheme {scheme!r}; expected one of {', '.join(SCHEMES)} "
        f"(weight-only) or {', '.join(GGML_SCHEMES)} (GGML blocks)")


def _skipped(name: str, skip) -> bool:
    """``name`` matches an entry of ``skip``: equal, a dotted suffix ("lm_head" matches
    "lm_head", "mlp.c_proj" matches "transformer.h.0.mlp.c_proj"), or an fnmatch pattern."""
    return any(name == s or name.endswith("." + s) or fnmatch.fnmatchcase(name, s)
               for s in skip)


def _convert(linear: Linear, spec: _Scheme, name: str, fallbacks: list) -> Module:
    if spec.kind != "ggml":
        try:
            return WeightOnlyLinear.from_linear(linear, spec.bits, spec.group_size,
                                                spec.zero_point)
        except ShapeError as e:
            raise ShapeError(f"quantize: layer {name or '<root>'!r} "
                             f"({linear.out_features}x{linear.in_features}): {e}. Choose "
                             f"another group_size, or leave the layer out with skip=") from None
    qtype = spec.qtype
    if qtype == GGMLType.Q4_K and linear.in_features % 256:
        qtype = GGMLType.Q5_0          # llama-quantize's fallback for Q4_K
        fallbacks.append(name)
    weight = np.asarray(linear.weight.detach().numpy(), dtype=np.float32)
    bias = linear.bias.detach().numpy() if linear.bias is not None else None
    try:
        blocks = quantize_blocks(weight, qtype)
    except ShapeError as e:
        raise ShapeError(f"quantize: layer {name or '<root>'!r}: {e}; leave it out with "
                         f"skip=") from None
    return _ql.QuantizedLinear.from_blocks(blocks, qtype, linear.in_features,
                                           linear.out_features, bias=bias)


def quantize_model(model: Module, scheme: str = "int8", *, group_size: int | None = None,
                   zero_point: bool = False, skip=("lm_head",), inplace: bool = False) -> Module:
    """Quantize the weights of every ``nn.Linear`` of ``model``; returns the quantized model.

    * ``scheme``: ``"int8"``, ``"int4"`` (:class:`WeightOnlyLinear` layers) or a GGML type of
      :data:`GGML_SCHEMES` (:class:`~gradient.quant.linear.QuantizedLinear` layers).
    * ``group_size``: weights per scale along the input dimension; ``None`` is per output
      channel for int8 and 32 for int4. A layer whose ``in_features`` it does not divide
      raises ShapeError (naming the layer).
    * ``zero_point``: int4 only; asymmetric groups with uint4 zero points.
    * ``skip``: names of layers to keep in float (exact names, dotted suffixes or fnmatch
      patterns). The default keeps ``lm_head``: the head is the layer whose error reaches the
      logits unaveraged, it is often tied to the embedding (which stays float anyway), and
      GPT-2 reads ``lm_head.weight`` to size its KV cache. Pass ``skip=()`` to quantize it too.
    * ``inplace=False`` (default): ``model`` is left as it is and a copy is returned, so the
      float model stays available for comparison (:func:`gradient.quant.quality.evaluate`).
      The copy shares nothing with ``model``, yet never copies the float weights of the
      layers it replaces (peak memory: the float model plus the quantized layers).
      ``inplace=True`` replaces the layers inside ``model`` and returns it.

    Only layers of type exactly ``nn.Linear`` are replaced: subclasses may have their own
    forward, and ``nn.MultiheadAttention`` reads its ``out_proj`` weight directly.

    Example::

        >>> q = quantize_model(model, "int4", group_size=64, zero_point=True)
        >>> q.generate(ids, max_new_tokens=20)
    """
    if not isinstance(model, Module):
        raise ArgumentTypeError(f"quantize_model: expected a gradient.nn.Module, got "
                                f"{type(model).__name__}")
    spec = _parse_scheme(scheme, group_size, zero_point)
    if isinstance(skip, str):
        skip = (skip,)
    fallbacks: list[str] = []

    def convert(name, module):
        if type(module) is Linear and not _skipped(name, skip):
            return _convert(module, spec, name, fallbacks)
        return None
    replaced = replace_layers(model, convert, inplace)
    if fallbacks:
        warnings.warn(f"quantize: {len(fallbacks)} layer(s) have in_features not a multiple of "
                      f"256 and were written as Q5_0 instead of Q4_K (as llama-quantize does): "
                      f"{', '.join(fallbacks[:4])}{' ...' if len(fallbacks) > 4 else ''}",
                      stacklevel=3)
    return replaced


def replace_layers(model: Module, convert, inplace: bool) -> Module:
    """``model`` with each module for which ``convert(name, module)`` returns a new one replaced
    by it (None: kept), in ``model`` itself (``inplace``) or in a copy that never copies the
    replaced modules' weights; the new modules take the training mode of those they replace.
    A model that is itself replaced is returned as its replacement."""
    replaced = {}                                     # id(old module) -> its replacement
    for name, module in model.named_modules():
        layer = convert(name, module)
        if layer is not None:
            layer.train(module.training)
            replaced[id(module)] = layer
    if id(model) in replaced:
        return replaced[id(model)]
    if not inplace:
        # deepcopy finds each replaced layer in its memo and takes the new one: the float
        # weights of those layers are never copied
        return copy.deepcopy(model, memo=dict(replaced))
    for name, module in list(model.named_modules(remove_duplicate=False)):
        if id(module) in replaced and name:
            model.set_submodule(name, replaced[id(module)])
    return model


def quantize(target, scheme, **options):
    """``gradient.quant.quantize``: one name for the two things "quantize" means here.

    * ``quantize(model, scheme, group_size=None, zero_point=False, skip=("lm_head",),
      inplace=False)`` with a :class:`~gradient.nn.Module`: :func:`quantize_model` (weight-only
      int8/int4, or GGML blocks).
    * ``quantize(weight, qtype)`` with an array or Tensor: the GGML block writer
      (:func:`gradient.quant.linear.quantize`, bit-exact with ``gguf.quants.quantize``, plus
      Q4_K through :func:`quantize_q4_k`), returning uint8 (out_features, row bytes).

    The first argument decides, so code written against the block writer keeps working.

    Example::

        >>> q4 = quantize(model, "int4", group_size=32)
        >>> blocks = quantize(np.ones((2, 32), np.float32), "Q8_0")    # (2, 34) uint8
    """
    if isinstance(target, Module):
        return quantize_model(target, scheme, **options)
    if options:
        raise ArgumentTypeError(
            f"quantize: {', '.join(sorted(options))} apply to models; an array is "
            f"quantized as quantize(weight, qtype)")
    if isinstance(target, Tensor):
        target = target.detach().numpy()
    return quantize_blocks(target, scheme)
