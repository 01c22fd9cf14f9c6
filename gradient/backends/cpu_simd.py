"""Vectors inside compiled kernels, for the int8 dot products of quantized weights.

LLVM vectorises numba's loops well, but it does not find the x86 instructions that make
quantized products fast: ``vpdpbusd`` (AVX-512 VNNI, and AVX-VNNI on 256-bit registers)
multiplies 64 unsigned bytes by 64 signed bytes and adds each four neighbouring products
into one of 16 int32 sums: one instruction for 64 multiply-adds. This module gives kernels
that operation, and the few others around it, as functions on LLVM vector values, so that a
kernel is written in numba as llama.cpp's are in C:

* ``i8x64`` (64 bytes), ``i32x16`` and ``f32x16`` are numba types whose values live in SIMD
  registers (LLVM's ``<64 x i8>`` ...); they exist only inside compiled code. On machines
  with 256-bit registers LLVM holds each in two.
* :func:`dot4_u8_i8` adds to each int32 lane ``l`` the four products ``u[4l+t] * s[4l+t]``,
  u's bytes unsigned and s's signed. Where the machine has VNNI it is ``vpdpbusd`` itself;
  elsewhere ``pmaddubsw`` and ``pmaddwd`` (AVX2, AVX-512BW) or LLVM's generic vector IR (other
  CPUs, ARM). The sums are exact integers either way, so a kernel gives the same bits on
  every machine. :func:`dot4_u7_i8` is the same for bytes u below 128, which pmaddubsw
  multiplies in one step (it saturates sums of two products past int16, which such bytes
  never reach); with VNNI the two are one instruction.
* Everything else is loads, stores, broadcasts, nibbles, conversions and lane-by-lane
  arithmetic, which LLVM writes for any CPU; float arithmetic rounds each operation as
  float32, in the order written (LLVM fuses no multiply-add on its own, see
  :mod:`.cpu_compile`; :func:`fma_f32` is one where a kernel asks for it, the same bits on
  every CPU).

Example (64 products of nibbles with four signed bytes repeated, in a compiled kernel)::

    >>> @compile_kernel
    ... def dot64(codes, x, out):             # codes uint8 (64,), x int8 (4,), out int32 (16,)
    ...     sums = dot4_u7_i8(zeros_i32x16(), low_nibbles(load_i8x64(codes, 0)),
    ...                       broadcast_4_bytes(x, 0))
    ...     store_i32x16(out, 0, sums)
"""

from __future__ import annotations

from llvmlite import binding as llvm
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, models, register_model

__all__ = ["i8x64", "i32x16", "f32x16", "load_i8x64", "store_i32x16", "broadcast_4_bytes",
           "low_nibbles", "high_nibbles", "with_top_bits", "dot4_u8_i8", "dot4_u7_i8",
           "broadcast_i32x16", "add_i32", "zeros_i32x16", "to_f32", "load_f32x16", "store_f32x16",
           "load_i8_as_f32x16", "load_f16_as_f32x16", "load_f16_as_f32x16_by_integers",
           "load_bf16_as_f32x16", "broadcast_f32x16",
           "zeros_f32x16", "bytes_as_f32", "code_as_f32", "fma_f32", "fused_multiply_add",
           "transpose_16x16",
           "fold_halves", "mul_f32", "add_f32", "neg_f32", "largest_magnitude", "rint_f32",
           "to_i32", "sum_i32", "store_i32_as_i8", "rounded_to_f16", "wide_registers", "features",
           "prefetch", "prefetch_to_l2", "load_pairs_i32x16", "dot2_bf16", "dot2_bf16_fmas",
           "has_dot2_bf16"]


class _Vector(types.Type):
    """A numba type: ``lanes`` values of one LLVM scalar type, held as one LLVM vector."""

    def __init__(self, name: str, element: ir.Type, lanes: int):
        self.element, self.lanes = element, lanes
        super().__init__(name=name)

    def llvm(self) -> ir.VectorType:
        return ir.VectorType(self.element, self.lanes)


@register_model(_Vector)
class _VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, fe_type.llvm())


i8x64 = _Vector("i8x64", ir.IntType(8), 64)
i32x16 = _Vector("i32x16", ir.IntType(32), 16)
f32x16 = _Vector("f32x16", ir.FloatType(), 16)
_I32 = ir.IntType(32)


def _mask(indices) -> ir.Constant:
    return ir.Constant(ir.VectorType(_I32, len(indices)), list(indices))


def features(context) -> set:
    """The CPU features code compiled in ``context`` (a numba target context) may use: the
    ones numba compiles for (the host's, unless ``NUMBA_CPU_FEATURES`` says otherwise)."""
    found = getattr(context.codegen(), "_tm_features", None)
    if found is None:
        found = llvm.get_host_cpu_features().flatten()
    return set(found.split(","))


def _pointer(context, builder, array_type, array, index, element: ir.Type):
    """A pointer to ``element`` at the flat element ``index`` of a C-contiguous array."""
    data = context.make_array(array_type)(context, builder, array).data
    return builder.bitcast(builder.gep(data, [index]), element.as_pointer())


def _array_of(itemsize, kind=types.Integer):
    """A check of numba array types: C-contiguous, of ``kind`` (integers: a vector of bytes
    loads from uint8 and int8 alike) with items of ``itemsize`` bytes."""
    def accepts(array):
        return (isinstance(array, types.Array) and array.layout == "C"
                and isinstance(array.dtype, kind) and array.dtype.bitwidth // 8 == itemsize)
    return accepts


def _splat(builder, value, vector: _Vector):
    """``value`` (a scalar of the vector's element type) in every lane."""
    one = builder.insert_element(ir.Constant(vector.llvm(), ir.Undefined), value,
                                 ir.Constant(_I32, 0))
    return builder.shuffle_vector(one, one, _mask([0] * vector.lanes))


# ----------------------------------------------------------------------------- memory
def _loader(vector, accepts, doc):
    @intrinsic
    def load(typingctx, array, index):
        if not (accepts(array) and isinstance(index, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            index = context.cast(builder, args[1], signature.args[1], types.intp)
            return builder.load(_pointer(context, builder, signature.args[0], args[0], index,
                                         vector.llvm()), align=1)
        return vector(array, index), codegen
    load.__doc__ = doc
    return load


def _storer(vector, accepts, doc):
    @intrinsic
    def store(typingctx, array, index, value):
        if not (accepts(array) and isinstance(index, types.Integer) and value == vector):
            return None

        def codegen(context, builder, signature, args):
            index = context.cast(builder, args[1], signature.args[1], types.intp)
            builder.store(args[2], _pointer(context, builder, signature.args[0], args[0], index,
                                            vector.llvm()), align=1)
            return context.get_dummy_value()
        return types.none(array, index, value), codegen
    store.__doc__ = doc
    return store


load_i8x64 = _loader(i8x64, _array_of(1), "``load_i8x64(a, i)``: the 64 bytes of a (uint8 or "
                     "int8, C-contiguous) from flat index i.")
store_i32x16 = _storer(i32x16, _array_of(4), "``store_i32x16(a, i, v)``: v into a's int32 (or "
                       "uint32) elements i .. i+15.")
load_f32x16 = _loader(f32x16, _array_of(4, types.Float), "``load_f32x16(a, i)``: the 16 "
                      "float32 of a from flat index i.")
store_f32x16 = _storer(f32x16, _array_of(4, types.Float), "``store_f32x16(a, i, v)``: v into "
                       "a's float32 elements i .. i+15.")


@intrinsic
def broadcast_4_bytes(typingctx, array, index):
    """The bytes ``a[i] .. a[i+3]`` of a byte array, repeated 16 times (an i8x64): one
    signed operand of :func:`dot4_u8_i8` for every lane."""
    if not (_array_of(1)(array) and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        four = builder.load(_pointer(context, builder, signature.args[0], args[0], index, _I32),
                            align=1)
        return builder.bitcast(_splat(builder, four, i32x16), i8x64.llvm())
    return i8x64(array, index), codegen


def _widening_loader(dtypes, element: ir.Type, widen, doc):
    """A load of 16 elements of a C-contiguous array of one of ``dtypes`` (a tuple: the types
    whose elements have these bits) from a flat index, each made a float32 by
    ``widen(builder, vector)``."""
    @intrinsic
    def load(typingctx, array, index):
        if not (isinstance(array, types.Array) and array.dtype in dtypes
                and array.layout == "C" and isinstance(index, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            index = context.cast(builder, args[1], signature.args[1], types.intp)
            v = builder.load(_pointer(context, builder, signature.args[0], args[0], index,
                                      ir.VectorType(element, 16)), align=1)
            return widen(builder, v)
        return f32x16(array, index), codegen
    load.__doc__ = doc
    return load


load_i8_as_f32x16 = _widening_loader(
    (types.int8,), ir.IntType(8), lambda builder, v: builder.sitofp(v, f32x16.llvm()),
    "``load_i8_as_f32x16(a, i)``: the 16 signed bytes of an int8 array from flat index i, as "
    "float32 (exact).")
load_f16_as_f32x16 = _widening_loader(
    (types.uint16,), ir.IntType(16),
    lambda builder, v: builder.fpext(builder.bitcast(v, ir.VectorType(ir.HalfType(), 16)),
                                     f32x16.llvm()),
    "``load_f16_as_f32x16(a, i)``: the 16 float16 values whose bits a uint16 array "
    "holds from flat index i, as float32 (exact): F16C's vcvtph2ps where the CPU has it.")


def _f16_to_f32_by_integers(builder, v):
    """float16 bits widened without the CPU's conversion: the sign, exponent and fraction
    moved into a float32's places (``bits << 13``, sign kept at bit 31) read 2^-112 times the
    value for a normal or subnormal half (a float32 subnormal for the latter), and one exact
    multiply by 2^112 scales it back; infinities and NaNs (exponent 31, all that comes out
    as 2^16 or more, beyond the largest half) take float32's all-ones exponent instead."""
    i32 = i32x16.llvm()

    def ints(value):
        return ir.Constant(i32, [value] * 16)
    # sign-extended, then shifted: bits 31..28 all hold the sign; keep bit 31 only (the mask
    # 0x8fffffff, as a signed int32)
    moved = builder.and_(builder.shl(builder.sext(v, i32), ints(13)), ints(-0x70000001))
    scaled = builder.fmul(builder.bitcast(moved, f32x16.llvm()),
                          builder.bitcast(ints(0x77800000), f32x16.llvm()))     # 2^112
    large = builder.icmp_unsigned(">=", builder.and_(moved, ints(0x7fffffff)), ints(0x0f800000))
    special = builder.bitcast(builder.or_(moved, ints(0x7f800000)), f32x16.llvm())
    return builder.select(large, special, scaled)


load_f16_as_f32x16_by_integers = _widening_loader(
    (types.uint16,), ir.IntType(16), _f16_to_f32_by_integers,
    "``load_f16_as_f32x16_by_integers(a, i)``: the values of :func:`load_f16_as_f32x16` "
    "(exact, every half), from integer operations and one multiply instead of vcvtph2ps: "
    "a one-row product streaming float16 weights from memory was about 10% faster so on "
    "an AMD EPYC (Zen 4), whose vcvtph2ps held the loop back; in registers, with many rows "
    "of x to multiply each widened weight with, the one instruction is the cheaper.")


def _bf16_to_f32(builder, v):
    return builder.bitcast(builder.shl(builder.zext(v, i32x16.llvm()),
                                       ir.Constant(i32x16.llvm(), [16] * 16)), f32x16.llvm())


load_bf16_as_f32x16 = _widening_loader(
    (types.int16,), ir.IntType(16), _bf16_to_f32,
    "``load_bf16_as_f32x16(a, i)``: the 16 bfloat16 values whose bits an int16 array holds "
    "from flat index i, as float32 (exact: a bfloat16 is the top half of a float32).")


def _transposed(builder, rows):
    """16 vectors of 16 lanes transposed: four stages that each swap the off-diagonal blocks
    of the 2 x 2 blocks of side 8, 4, 2, 1 (one two-source shuffle per vector a stage:
    vpermt2ps on AVX-512)."""
    for b in (8, 4, 2, 1):
        new = list(rows)
        for i in range(16):
            if i & b:
                continue
            x, y = rows[i], rows[i + b]
            new[i] = builder.shuffle_vector(x, y, _mask(
                [lane if not lane & b else 16 + lane - b for lane in range(16)]))
            new[i + b] = builder.shuffle_vector(x, y, _mask(
                [lane + b if not lane & b else 16 + lane for lane in range(16)]))
        rows = new
    return rows


@intrinsic
def transpose_16x16(typingctx, src, src_at, src_stride, dst, dst_at, dst_stride):
    """``dst[dst_at + c * dst_stride + r] = src[src_at + r * src_stride + c]`` for r, c in
    0 .. 15 (flat indices of C-contiguous arrays): a 16 x 16 block of float32 (or of 16-bit
    floats' bits, float16 as uint16 and bfloat16 as int16, widened exactly) into float32,
    transposed in registers. Only data moves: the values are the same bits."""
    ints = (src_at, src_stride, dst_at, dst_stride)
    if not (isinstance(src, types.Array) and src.layout == "C"
            and src.dtype in (types.float32, types.uint16, types.int16)
            and isinstance(dst, types.Array) and dst.layout == "C" and dst.dtype == types.float32
            and all(isinstance(i, types.Integer) for i in ints)):
        return None
    bits = src.dtype != types.float32

    def codegen(context, builder, signature, args):
        a_src, a_at, a_stride, a_dst, b_at, b_stride = args
        sig = signature.args
        at, stride = (context.cast(builder, a, t, types.intp) for a, t in
                      ((a_at, sig[1]), (a_stride, sig[2])))
        out_at, out_stride = (context.cast(builder, a, t, types.intp) for a, t in
                              ((b_at, sig[4]), (b_stride, sig[5])))
        rows = []
        for r in range(16):
            index = builder.add(at, builder.mul(stride, ir.Constant(stride.type, r)))
            if bits:
                v = builder.load(_pointer(context, builder, sig[0], a_src, index,
                                          ir.VectorType(ir.IntType(16), 16)), align=1)
                v = (_bf16_to_f32(builder, v) if src.dtype == types.int16 else
                     builder.fpext(builder.bitcast(v, ir.VectorType(ir.HalfType(), 16)),
                                   f32x16.llvm()))
            else:
                v = builder.load(_pointer(context, builder, sig[0], a_src, index,
                                          f32x16.llvm()), align=1)
            rows.append(v)
        for c, column in enumerate(_transposed(builder, rows)):
            index = builder.add(out_at, builder.mul(out_stride, ir.Constant(out_stride.type, c)))
            builder.store(column, _pointer(context, builder, sig[3], a_dst, index,
                                           f32x16.llvm()), align=1)
        return context.get_dummy_value()
    return types.none(src, src_at, src_stride, dst, dst_at, dst_stride), codegen


def _prefetcher(name: str, locality: int, doc: str):
    """An intrinsic ``f(a, i)`` asking for the cache line of ``a[i]`` (flat index of a C array)
    with llvm.prefetch's ``locality`` (3: every level, L1 included; 2: the L2 cache and
    beyond): a hint, no effect on results, never a fault past the array's end."""
    def prefetcher(typingctx, array, index):
        if not (isinstance(array, types.Array) and array.layout == "C"
                and isinstance(index, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            index = context.cast(builder, args[1], signature.args[1], types.intp)
            address = _pointer(context, builder, signature.args[0], args[0], index,
                               ir.IntType(8))
            _call(builder, "llvm.prefetch.p0", ir.VoidType(), address, ir.Constant(_I32, 0),
                  ir.Constant(_I32, locality), ir.Constant(_I32, 1))
            return context.get_dummy_value()
        return types.none(array, index), codegen
    prefetcher.__name__ = prefetcher.__qualname__ = name
    prefetcher.__doc__ = doc
    return intrinsic(prefetcher)


prefetch = _prefetcher("prefetch", 3, """Ask the CPU to bring the cache line of ``a[i]`` (flat
    index) into its caches, for a read soon (the next few hundred instructions).""")
prefetch_to_l2 = _prefetcher("prefetch_to_l2", 2, """Ask the CPU to bring the cache line of
    ``a[i]`` into its L2 cache, not L1: for a read later than :func:`prefetch`'s, of more lines
    than L1 holds.""")


# ----------------------------------------------------------------------------- integers
@intrinsic
def low_nibbles(typingctx, v):
    """Each byte's low 4 bits (0 .. 15)."""
    if v != i8x64:
        return None

    def codegen(context, builder, signature, args):
        return builder.and_(args[0], ir.Constant(i8x64.llvm(), [15] * 64))
    return i8x64(v), codegen


@intrinsic
def high_nibbles(typingctx, v):
    """Each byte's high 4 bits (0 .. 15)."""
    if v != i8x64:
        return None

    def codegen(context, builder, signature, args):
        return builder.lshr(args[0], ir.Constant(i8x64.llvm(), [4] * 64))
    return i8x64(v), codegen


@intrinsic
def with_top_bits(typingctx, low, top, shift):
    """``low | ((top >> shift) & 3) << 4`` byte by byte: four low bits (0 .. 15) and two more
    from ``top`` (bits ``shift`` and ``shift + 1`` of each byte; ``shift`` a literal 0, 2, 4
    or 6), a 6-bit code (0 .. 63)."""
    if not (low == i8x64 and top == i8x64 and isinstance(shift, types.IntegerLiteral)
            and shift.literal_value in (0, 2, 4, 6)):
        return None
    by = shift.literal_value

    def codegen(context, builder, signature, args):
        def splat(value):
            return ir.Constant(i8x64.llvm(), [value] * 64)
        bits = builder.and_(builder.lshr(args[1], splat(by)), splat(3))
        return builder.or_(args[0], builder.shl(bits, splat(4)))
    return i8x64(low, top, shift), codegen


@intrinsic
def broadcast_i32x16(typingctx, value):
    """An integer (cast to int32) in all 16 lanes."""
    if not isinstance(value, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return _splat(builder, context.cast(builder, args[0], signature.args[0], types.int32),
                      i32x16)
    return i32x16(value), codegen


@intrinsic
def add_i32(typingctx, a, b):
    """Lane by lane ``a + b`` (wrapping) of two i32x16."""
    if not (a == i32x16 and b == i32x16):
        return None

    def codegen(context, builder, signature, args):
        return builder.add(args[0], args[1])
    return i32x16(a, b), codegen


@intrinsic
def zeros_i32x16(typingctx):
    """An i32x16 of zeros."""
    def codegen(context, builder, signature, args):
        return ir.Constant(i32x16.llvm(), [0] * 16)
    return i32x16(), codegen


def _call(builder, name, result: ir.Type, *args):
    f = cgutils.get_or_insert_function(builder.module,
                                       ir.FunctionType(result, [a.type for a in args]), name)
    return builder.call(f, list(args))


def _halves(builder, v, width):
    """``v`` cut into vectors of ``width`` lanes."""
    n = v.type.count
    return [builder.shuffle_vector(v, v, _mask(range(o, o + width))) for o in range(0, n, width)]


def _joined(builder, parts):
    while len(parts) > 1:
        a, b = parts[0], parts[1]
        n = a.type.count
        parts = [builder.shuffle_vector(a, b, _mask(range(2 * n)))] + parts[2:]
    return parts[0]


def _madd(builder, found, u, s, weight: int):
    """``weight * (u[4l]s[4l] + ... + u[4l+3]s[4l+3])`` per int32 lane, on pmaddubsw and
    pmaddwd (exact while every u is below 128)."""
    if "+avx512bw" in found:
        pieces, suffix, lanes = [(u, s)], "avx512.pmaddubs.w.512", 32
        pairs = "avx512.pmaddw.d.512"
    else:
        pieces = list(zip(_halves(builder, u, 32), _halves(builder, s, 32)))
        suffix, lanes, pairs = "avx2.pmadd.ub.sw", 16, "avx2.pmadd.wd"
    i16 = ir.VectorType(ir.IntType(16), lanes)
    out = []
    for pu, ps in pieces:
        products = _call(builder, f"llvm.x86.{suffix}", i16, pu, ps)
        out.append(_call(builder, f"llvm.x86.{pairs}", ir.VectorType(_I32, lanes // 2),
                         products, ir.Constant(i16, [weight] * lanes)))
    return _joined(builder, out)


def _generic_dot4(builder, u, s):
    """The four-product sums in LLVM's generic vector IR (exact for any bytes)."""
    wide = ir.VectorType(_I32, 64)
    products = builder.mul(builder.zext(u, wide), builder.sext(s, wide))
    parts = [builder.shuffle_vector(products, products, _mask(range(t, 64, 4)))
             for t in range(4)]
    return builder.add(builder.add(parts[0], parts[1]), builder.add(parts[2], parts[3]))


def _vnni(builder, found, acc, u, s):
    """``vpdpbusd`` on 512-bit registers, or on two 256-bit ones (AVX-VNNI); None without."""
    if "+avx512vnni" in found and "+avx512f" in found:
        return _call(builder, "llvm.x86.avx512.vpdpbusd.512", i32x16.llvm(), acc, u, s)
    if "+avxvnni" in found or ("+avx512vnni" in found and "+avx512vl" in found):
        parts = [_call(builder, "llvm.x86.avx512.vpdpbusd.256", a.type, a, pu, ps)
                 for a, pu, ps in zip(_halves(builder, acc, 8), _halves(builder, u, 32),
                                      _halves(builder, s, 32))]
        return _joined(builder, parts)
    return None


def _dot4(small: bool):
    def typer(typingctx, acc, u, s):
        if not (acc == i32x16 and u == i8x64 and s == i8x64):
            return None

        def codegen(context, builder, signature, args):
            acc, u, s = args
            found = features(context)
            fused = _vnni(builder, found, acc, u, s)
            if fused is not None:
                return fused
            if "+avx2" not in found:
                return builder.add(acc, _generic_dot4(builder, u, s))
            if small:
                return builder.add(acc, _madd(builder, found, u, s, 1))
            # any byte: its low seven bits, then its top bit (the products of 0/1 times s,
            # weighted 128 in pmaddwd), each exact in pmaddubsw's int16 pairs
            low = builder.and_(u, ir.Constant(i8x64.llvm(), [127] * 64))
            top = builder.lshr(u, ir.Constant(i8x64.llvm(), [7] * 64))
            return builder.add(acc, builder.add(_madd(builder, found, low, s, 1),
                                                _madd(builder, found, top, s, 128)))
        return i32x16(acc, u, s), codegen
    return typer


dot4_u8_i8 = intrinsic(_dot4(small=False))
dot4_u8_i8.__doc__ = """``acc[l] + u[4l]*s[4l] + ... + u[4l+3]*s[4l+3]`` for the 16 int32 lanes l:
u's bytes unsigned (any), s's signed (VNNI's ``vpdpbusd``; exact)."""
dot4_u7_i8 = intrinsic(_dot4(small=True))
dot4_u7_i8.__doc__ = """:func:`dot4_u8_i8` where every byte of u is below 128 (the caller's
promise: nibbles, 5- and 6-bit codes): one pmaddubsw where the CPU lacks VNNI."""


@intrinsic
def wide_registers(typingctx):
    """Whether the code being compiled has 32 registers of 512 bits (AVX-512), a constant of
    the compilation: a kernel keeps more sums in registers there than on AVX2's 16 of 256."""
    def codegen(context, builder, signature, args):
        return ir.Constant(ir.IntType(1), int("+avx512f" in features(context)))
    return types.boolean(), codegen


# ----------------------------------------------------------------------------- floats
@intrinsic
def to_f32(typingctx, v):
    """An i32x16 as float32 lanes (rounded as float32(int) is)."""
    if v != i32x16:
        return None

    def codegen(context, builder, signature, args):
        return builder.sitofp(args[0], f32x16.llvm())
    return f32x16(v), codegen


@intrinsic
def bytes_as_f32(typingctx, v):
    """The four bytes of each 32-bit lane of an i8x64, unsigned, as four f32x16: the t-th
    holds byte t of every lane (bytes t, t + 4, ..., t + 60), exactly. The codes of 16 rows
    of a repacked weight, four values each, become the float lanes of four values."""
    if v != i8x64:
        return None
    result = types.UniTuple(f32x16, 4)

    def codegen(context, builder, signature, args):
        parts = []
        for t in range(4):
            picked = builder.shuffle_vector(args[0], args[0], _mask(range(t, 64, 4)))
            parts.append(builder.uitofp(builder.zext(picked, i32x16.llvm()), f32x16.llvm()))
        return context.make_tuple(builder, result, parts)
    return result(v), codegen


@intrinsic
def broadcast_f32x16(typingctx, value):
    """A float32 in all 16 lanes."""
    if value != types.float32:
        return None

    def codegen(context, builder, signature, args):
        return _splat(builder, args[0], f32x16)
    return f32x16(value), codegen


@intrinsic
def zeros_f32x16(typingctx):
    """An f32x16 of zeros."""
    def codegen(context, builder, signature, args):
        return ir.Constant(f32x16.llvm(), [0.0] * 16)
    return f32x16(), codegen


def _float_op(name, doc):
    @intrinsic
    def op(typingctx, a, b):
        if not (a == f32x16 and b == f32x16):
            return None

        def codegen(context, builder, signature, args):
            return getattr(builder, name)(args[0], args[1])
        return f32x16(a, b), codegen
    op.__doc__ = doc
    return op


mul_f32 = _float_op("fmul", "Lane by lane ``a * b`` of two f32x16, rounded as float32.")
add_f32 = _float_op("fadd", "Lane by lane ``a + b`` of two f32x16, rounded as float32.")


@intrinsic
def fma_f32(typingctx, a, b, c):
    """Lane by lane ``a * b + c`` rounded once (LLVM's ``llvm.fma``: ``vfmadd`` where the CPU
    has it, a correctly rounded library call where not: the same bits everywhere)."""
    if not (a == f32x16 and b == f32x16 and c == f32x16):
        return None

    def codegen(context, builder, signature, args):
        return _call(builder, "llvm.fma.v16f32", f32x16.llvm(), *args)
    return f32x16(a, b, c), codegen


@intrinsic
def fused_multiply_add(typingctx, a, b, c):
    """``a * b + c`` of three float32 or three float64 scalars, rounded once (LLVM's
    ``llvm.fma``, as :func:`fma_f32`: the same bits on every CPU)."""
    if not (a == b == c and a in (types.float32, types.float64)):
        return None
    name = "llvm.fma.f32" if a == types.float32 else "llvm.fma.f64"

    def codegen(context, builder, signature, args):
        return _call(builder, name, args[0].type, *args)
    return a(a, b, c), codegen


@intrinsic
def code_as_f32(typingctx, v, shift, bits, plus):
    """A code of each 32-bit lane of an i8x64 as an f32x16: bits ``shift .. shift + bits - 1``
    of the lane, unsigned, plus ``plus`` (a float32; the sum exact for codes and offsets of a
    few bits). ``bits`` is a literal, 4 (a nibble) or 8 (a byte). With AVX-512 a nibble is
    the index into a 16-entry table of the sums (``vpermps`` reads the low four bits of each
    lane): one shift and one permute."""
    if not (v == i8x64 and isinstance(shift, types.Integer) and plus == types.float32
            and isinstance(bits, types.IntegerLiteral) and bits.literal_value in (4, 8)):
        return None
    width = bits.literal_value

    def codegen(context, builder, signature, args):
        lanes = builder.bitcast(args[0], i32x16.llvm())
        by = builder.trunc(args[1], _I32) if args[1].type.width > 32 else args[1]
        moved = builder.lshr(lanes, _splat(builder, by, i32x16))
        add = _splat(builder, args[3], f32x16)
        if width == 4 and "+avx512f" in features(context):
            table = builder.fadd(ir.Constant(f32x16.llvm(), [float(c) for c in range(16)]), add)
            return _call(builder, "llvm.x86.avx512.permvar.sf.512", f32x16.llvm(), table, moved)
        code = builder.and_(moved, ir.Constant(i32x16.llvm(), [(1 << width) - 1] * 16))
        return builder.fadd(builder.sitofp(code, f32x16.llvm()), add)
    return f32x16(v, shift, bits, plus), codegen


load_pairs_i32x16 = _loader(i32x16, _array_of(2), "``load_pairs_i32x16(a, i)``: the 32 "
                            "16-bit values of a (their bits: int16 or uint16) from flat index "
                            "i, two to an int32 lane (value 2l in lane l's low half).")

_SIGN, _EXPONENT = 0x80000000 - (1 << 32), 0x7F800000     # (the sign bit as an int32)


def _flushed(builder, bits):
    """int32 lanes of float32 bits with subnormals made zeros of their sign."""
    t = i32x16.llvm()
    subnormal = builder.icmp_signed("==", builder.and_(bits, ir.Constant(t, [_EXPONENT] * 16)),
                                    ir.Constant(t, [0] * 16))
    return builder.select(subnormal, builder.and_(bits, ir.Constant(t, [_SIGN] * 16)), bits)


def _as_f32(builder, bits):
    return builder.bitcast(bits, f32x16.llvm())


def _dot2_bf16_fmas(builder, acc, a, b):
    """:func:`dot2_bf16` from fused multiply-adds: the instruction's arithmetic as Intel
    documents it (each step a float32 FMA, subnormal inputs read as zero, subnormal results
    written as zero; the odd element first)."""
    t = i32x16.llvm()
    high = ir.Constant(t, [-(1 << 16)] * 16)
    sixteen = ir.Constant(t, [16] * 16)

    def odd(v):
        return _as_f32(builder, _flushed(builder, builder.and_(v, high)))

    def even(v):
        return _as_f32(builder, _flushed(builder, builder.shl(v, sixteen)))

    acc = _flushed(builder, builder.bitcast(acc, t))
    for part in (odd, even):
        total = _call(builder, "llvm.fma.v16f32", f32x16.llvm(), part(a), part(b),
                      _as_f32(builder, acc))
        acc = _flushed(builder, builder.bitcast(total, t))
    return _as_f32(builder, acc)


class _BFloat(ir.types._BaseFloatType):
    """LLVM's ``bfloat`` type, which llvmlite does not name: the operands of vdpbf16ps."""

    null = "0.0"
    intrinsic_name = "bf16"

    def __str__(self):
        return "bfloat"


_BFloat._create_instance()


def _dot2_bf16(instruction: bool):
    def typer(typingctx, acc, a, b):
        if not (acc == f32x16 and a == i32x16 and b == i32x16):
            return None

        def codegen(context, builder, signature, args):
            acc, a, b = args
            if instruction and has_dot2_bf16(context):
                pairs = ir.VectorType(_BFloat(), 32)
                return _call(builder, "llvm.x86.avx512bf16.dpbf16ps.512", f32x16.llvm(), acc,
                             builder.bitcast(a, pairs), builder.bitcast(b, pairs))
            return _dot2_bf16_fmas(builder, acc, a, b)
        return f32x16(acc, a, b), codegen
    return typer


def has_dot2_bf16(context) -> bool:
    """Whether code compiled in ``context`` (a numba target context) has ``vdpbf16ps``, which
    :func:`dot2_bf16` then is."""
    found = features(context)
    return "+avx512bf16" in found and "+avx512f" in found


dot2_bf16 = intrinsic(_dot2_bf16(instruction=True))
dot2_bf16.__doc__ = """``acc[l] + a[2l+1]*b[2l+1] + a[2l]*b[2l]`` for the 16 float32 lanes l, a
and b holding 32 bfloat16 values' bits two to a lane (:func:`load_pairs_i32x16`): each step a
float32 fused multiply-add (bfloat16 products are exact in float32), the odd element first,
subnormal inputs and results zero. ``vdpbf16ps`` where the CPU has AVX512_BF16 (twice the
multiply-adds of float32's FMA a cycle), the same arithmetic from FMAs elsewhere."""
dot2_bf16_fmas = intrinsic(_dot2_bf16(instruction=False))
dot2_bf16_fmas.__doc__ = """:func:`dot2_bf16` from FMAs on every CPU (what tests hold the
instruction to)."""


@intrinsic
def fold_halves(typingctx, a):
    """The 16 lanes of an f32x16 summed by folding halves: lane ``l`` plus lane ``l + 8``,
    then ``+ l + 4``, ``+ l + 2``, ``+ l + 1``; lane 0 of the result, as a float32 (the order
    of :func:`~gradient.backends.cpu_reduce.fold_lanes` on 16 lanes)."""
    if a != f32x16:
        return None

    def codegen(context, builder, signature, args):
        v = args[0]
        width = 16
        while width > 1:
            width //= 2
            low, high = _halves(builder, v, width)[:2]
            v = builder.fadd(low, high)
        return builder.extract_element(v, ir.Constant(_I32, 0))
    return types.float32(a), codegen


@intrinsic
def largest_magnitude(typingctx, a, b):
    """The largest ``|lane|`` of two f32x16, as a float32; NaN if any lane is NaN (as NumPy's
    ``np.abs(v).max()``). Exact in any order: magnitudes compare as their bit patterns do."""
    if not (a == f32x16 and b == f32x16):
        return None

    def codegen(context, builder, signature, args):
        bits = [builder.bitcast(_call(builder, "llvm.fabs.v16f32", f32x16.llvm(), v),
                                i32x16.llvm()) for v in args]
        both = _call(builder, "llvm.umax.v16i32", i32x16.llvm(), *bits)
        return builder.bitcast(_call(builder, "llvm.vector.reduce.umax.v16i32", _I32, both),
                               ir.FloatType())
    return types.float32(a, b), codegen


@intrinsic
def rint_f32(typingctx, a):
    """Lane by lane ``a`` rounded to the nearest integer, ties to even (NumPy's ``rint``)."""
    if a != f32x16:
        return None

    def codegen(context, builder, signature, args):
        return _call(builder, "llvm.rint.v16f32", f32x16.llvm(), args[0])
    return f32x16(a), codegen


@intrinsic
def to_i32(typingctx, a):
    """An f32x16 of integral values as i32x16 (truncating, as ``np.int32(value)``)."""
    if a != f32x16:
        return None

    def codegen(context, builder, signature, args):
        return builder.fptosi(args[0], i32x16.llvm())
    return i32x16(a), codegen


@intrinsic
def sum_i32(typingctx, a):
    """The sum of an i32x16's lanes, as an int32 (wrapping, so exact in any order)."""
    if a != i32x16:
        return None

    def codegen(context, builder, signature, args):
        return _call(builder, "llvm.vector.reduce.add.v16i32", _I32, args[0])
    return types.int32(a), codegen


@intrinsic
def store_i32_as_i8(typingctx, array, index, value):
    """The 16 lanes of an i32x16, each cut to its low byte (as NumPy's ``astype(np.int8)``),
    into ``a[i .. i+15]`` of a byte array."""
    if not (_array_of(1)(array) and isinstance(index, types.Integer) and value == i32x16):
        return None

    def codegen(context, builder, signature, args):
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        narrow = builder.trunc(args[2], ir.VectorType(ir.IntType(8), 16))
        builder.store(narrow, _pointer(context, builder, signature.args[0], args[0], index,
                                       narrow.type), align=1)
        return context.get_dummy_value()
    return types.none(array, index, value), codegen


@intrinsic
def rounded_to_f16(typingctx, value):
    """A float32 rounded to the nearest float16 (ties to even; past float16's range, inf) and
    widened back, as NumPy's ``astype(np.float16).astype(np.float32)``: F16C's vcvtps2ph where
    the CPU has it."""
    if value != types.float32:
        return None

    def codegen(context, builder, signature, args):
        return builder.fpext(builder.fptrunc(args[0], ir.HalfType()), ir.FloatType())
    return types.float32(value), codegen


@intrinsic
def neg_f32(typingctx, a):
    """Lane by lane ``-a`` of an f32x16 (the sign flipped, exactly)."""
    if a != f32x16:
        return None

    def codegen(context, builder, signature, args):
        return builder.fneg(args[0])
    return f32x16(a), codegen
