"""Vectors of small integers inside compiled kernels, for the int8 dot products of quantized
weights.

LLVM vectorises numba's loops well, but it does not find the x86 instructions that make
llama.cpp's quantized products fast: ``pmaddubsw`` multiplies 32 unsigned bytes by 32
signed bytes and adds neighbouring products into 16 int16 sums, one instruction for 32
multiply-adds; ``pmaddwd`` does the same for 16 int16 pairs into 8 int32 sums. This module
gives kernels those operations as functions on LLVM vector values, so that a kernel can be
written as llama.cpp's are, in numba:

* ``i8x32`` (32 bytes), ``i16x16``, ``i32x8`` and ``i32x16`` are numba types whose values
  live in SIMD registers (LLVM's ``<32 x i8>`` ...); they exist only inside compiled code.
* :func:`dot_u8_i8` and :func:`dot_i16` are the two products. Where the machine has AVX2 the
  compiled code calls ``pmaddubsw``/``pmaddwd`` themselves; elsewhere (other CPUs, ARM) the
  same arithmetic is written out in LLVM's generic vector IR. The results are exact integer
  sums either way (``pmaddubsw`` saturates its int16 sums; the callers keep them in range,
  so it never does), so a kernel gives the same bits on every machine.
* Everything else is loads, stores, broadcasts, lane shuffles and adds.

Lane order: :func:`zip_low` and :func:`zip_high` pair the bytes of two vectors as x86's
``unpack`` does, within each 128-bit half: ``zip_low(a, b)`` holds ``a[r], b[r]`` for lanes
``r`` 0-7 then 16-23, ``zip_high`` for 8-15 then 24-31. Products keep that order;
:func:`store_zipped` puts 32 sums back in the natural one.

Example (a dot product of 32 unsigned with 32 signed bytes, in a compiled kernel)::

    >>> @compile_kernel
    ... def dot32(u, s):                      # u uint8 (32,), s int8 (32,)
    ...     sums = widen_i16(dot_u8_i8(load_i8x32(u, 0), load_i8x32(s, 0)))
    ...     out = np.empty(16, np.int32)
    ...     store_i32x16(out, 0, sums)
    ...     return out.sum()
"""

from __future__ import annotations

from llvmlite import binding as llvm
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, models, register_model

__all__ = ["i8x32", "i16x16", "i32x8", "i32x16", "load_i8x32", "store_i8x32", "load_i16x16",
           "store_i16x16", "store_i32x16", "broadcast_i8_pair", "broadcast_i16_pair", "zip_low",
           "zip_high", "low_nibbles", "high_nibbles", "widen_i8_low", "widen_i8_high",
           "widen_i16", "dot_u8_i8", "dot_i16", "add", "join", "zeros_i16x16", "zeros_i32x8",
           "zeros_i32x16", "store_zipped", "uses_avx2", "f32x8", "load_f32x8", "store_f32x8",
           "load_i8_as_f32x8", "mul_f32", "neg_f32"]


class IntVector(types.Type):
    """A numba type: ``lanes`` integers of ``bits`` bits, held as one LLVM vector value."""

    def __init__(self, bits: int, lanes: int):
        self.bits, self.lanes = bits, lanes
        super().__init__(name=f"i{bits}x{lanes}")

    def llvm(self) -> ir.VectorType:
        return ir.VectorType(ir.IntType(self.bits), self.lanes)


@register_model(IntVector)
class _IntVectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, fe_type.llvm())


i8x32, i16x16, i32x8, i32x16 = (IntVector(8, 32), IntVector(16, 16), IntVector(32, 8),
                                IntVector(32, 16))
_I32 = ir.IntType(32)


def _mask(indices) -> ir.Constant:
    return ir.Constant(ir.VectorType(_I32, len(indices)), list(indices))


def uses_avx2(context) -> bool:
    """Whether code compiled in ``context`` (a numba target context) may use AVX2: the
    features numba compiles for (the host's, unless ``NUMBA_CPU_FEATURES`` says otherwise)."""
    features = getattr(context.codegen(), "_tm_features", None)
    if features is None:
        features = llvm.get_host_cpu_features().flatten()
    return "+avx2" in features.split(",")


def _pointer(context, builder, array_type, array, index, element: ir.Type):
    """A pointer to ``element`` at the flat element ``index`` of a C-contiguous array."""
    data = context.make_array(array_type)(context, builder, array).data
    return builder.bitcast(builder.gep(data, [index]), element.as_pointer())


def _array_of(*itemsizes, kind=types.Integer):
    """A check of numba array types: C-contiguous, of ``kind`` (integers: a vector of bytes
    loads from uint8 and int8 alike) with items of one of these sizes."""
    def accepts(array):
        return (isinstance(array, types.Array) and array.layout == "C"
                and isinstance(array.dtype, kind) and array.dtype.bitwidth // 8 in itemsizes)
    return accepts


# ----------------------------------------------------------------------------- memory
def _loader(vector, accepts):
    @intrinsic
    def load(typingctx, array, index):
        if not (accepts(array) and isinstance(index, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            index = context.cast(builder, args[1], signature.args[1], types.intp)
            return builder.load(_pointer(context, builder, signature.args[0], args[0], index,
                                         vector.llvm()), align=1)
        return vector(array, index), codegen
    return load


def _storer(vector, accepts):
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
    return store


#: ``load_i8x32(a, i)``: the 32 bytes of a (uint8 or int8, C-contiguous) from flat index i.
load_i8x32 = _loader(i8x32, _array_of(1))
#: ``store_i8x32(a, i, v)``: v into a's bytes i .. i+31.
store_i8x32 = _storer(i8x32, _array_of(1))
#: ``load_i16x16(a, i)``: 16 int16 of a (int16 or uint16) from flat index i.
load_i16x16 = _loader(i16x16, _array_of(2))
#: ``store_i16x16(a, i, v)``
store_i16x16 = _storer(i16x16, _array_of(2))
#: ``store_i32x16(a, i, v)``: v into a's int32 (or uint32) elements i .. i+15.
store_i32x16 = _storer(i32x16, _array_of(4))


@intrinsic
def broadcast_i8_pair(typingctx, array, index):
    """The bytes ``a[i], a[i+1]`` of a byte array, repeated 16 times (an i8x32)."""
    if not (_array_of(1)(array) and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        pair = builder.load(_pointer(context, builder, signature.args[0], args[0], index,
                                     ir.IntType(16)), align=1)
        pairs = builder.insert_element(ir.Constant(ir.VectorType(ir.IntType(16), 16),
                                                   ir.Undefined), pair, ir.Constant(_I32, 0))
        pairs = builder.shuffle_vector(pairs, pairs, _mask([0] * 16))
        return builder.bitcast(pairs, i8x32.llvm())
    return i8x32(array, index), codegen


@intrinsic
def broadcast_i16_pair(typingctx, array, index):
    """The signed bytes ``a[i], a[i+1]`` of an int8 array as int16, repeated 8 times (an
    i16x16)."""
    if not (isinstance(array, types.Array) and array.dtype == types.int8
            and array.layout == "C" and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        pair = builder.load(_pointer(context, builder, signature.args[0], args[0], index,
                                     ir.VectorType(ir.IntType(8), 2)), align=1)
        pair = builder.sext(pair, ir.VectorType(ir.IntType(16), 2))
        return builder.shuffle_vector(pair, pair, _mask([0, 1] * 8))
    return i16x16(array, index), codegen


# ----------------------------------------------------------------------------- lanes
_ZIP_LOW = [h * 16 + r // 2 + (r % 2) * 32 for h in range(2) for r in range(16)]
_ZIP_HIGH = [h * 16 + 8 + r // 2 + (r % 2) * 32 for h in range(2) for r in range(16)]


def _shuffler(indices, doc):
    @intrinsic
    def zip_(typingctx, a, b):
        if not (a == i8x32 and b == i8x32):
            return None

        def codegen(context, builder, signature, args):
            return builder.shuffle_vector(args[0], args[1], _mask(indices))
        return i8x32(a, b), codegen
    zip_.__doc__ = doc
    return zip_


zip_low = _shuffler(_ZIP_LOW, "``a[r], b[r]`` for lanes r 0-7 then 16-23 (x86's punpcklbw).")
zip_high = _shuffler(_ZIP_HIGH, "``a[r], b[r]`` for lanes r 8-15 then 24-31 (punpckhbw).")


@intrinsic
def low_nibbles(typingctx, v):
    """Each byte's low 4 bits (0 .. 15)."""
    if v != i8x32:
        return None

    def codegen(context, builder, signature, args):
        return builder.and_(args[0], ir.Constant(i8x32.llvm(), [15] * 32))
    return i8x32(v), codegen


@intrinsic
def high_nibbles(typingctx, v):
    """Each byte's high 4 bits (0 .. 15)."""
    if v != i8x32:
        return None

    def codegen(context, builder, signature, args):
        return builder.lshr(args[0], ir.Constant(i8x32.llvm(), [4] * 32))
    return i8x32(v), codegen


def _widen_half(half):
    @intrinsic
    def widen(typingctx, v):
        if v != i8x32:
            return None

        def codegen(context, builder, signature, args):
            part = builder.shuffle_vector(args[0], args[0], _mask(range(16 * half, 16 * half + 16)))
            return builder.sext(part, i16x16.llvm())
        return i16x16(v), codegen
    widen.__doc__ = f"Bytes {16 * half} .. {16 * half + 15}, signed, as int16."
    return widen


widen_i8_low, widen_i8_high = _widen_half(0), _widen_half(1)


@intrinsic
def widen_i16(typingctx, v):
    """16 int16 as 16 int32 (signed)."""
    if v != i16x16:
        return None

    def codegen(context, builder, signature, args):
        return builder.sext(args[0], i32x16.llvm())
    return i32x16(v), codegen


@intrinsic
def join(typingctx, a, b):
    """Two i32x8 as one i32x16: a's lanes, then b's."""
    if not (a == i32x8 and b == i32x8):
        return None

    def codegen(context, builder, signature, args):
        return builder.shuffle_vector(args[0], args[1], _mask(range(16)))
    return i32x16(a, b), codegen


# where natural lane r of 32 sits in zip_low's 16 lanes followed by zip_high's
_UNZIP = [r if r < 8 else 8 + r if r < 16 else r - 8 if r < 24 else r for r in range(32)]


@intrinsic
def store_zipped(typingctx, array, index, low, high):
    """32 int32 sums in natural lane order into ``a[i .. i+31]`` (int32), from ``low`` (lanes
    in :func:`zip_low`'s order) and ``high`` (:func:`zip_high`'s)."""
    if not (isinstance(array, types.Array) and array.dtype == types.int32
            and array.layout == "C" and isinstance(index, types.Integer)
            and low == i32x16 and high == i32x16):
        return None

    def codegen(context, builder, signature, args):
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        value = builder.shuffle_vector(args[2], args[3], _mask(_UNZIP))
        builder.store(value, _pointer(context, builder, signature.args[0], args[0], index,
                                      value.type), align=4)
        return context.get_dummy_value()
    return types.none(array, index, low, high), codegen


# ----------------------------------------------------------------------------- floats
class FloatVector(types.Type):
    """A numba type: 8 float32 values held as one LLVM vector (``<8 x float>``)."""

    def __init__(self):
        super().__init__(name="f32x8")

    def llvm(self) -> ir.VectorType:
        return ir.VectorType(ir.FloatType(), 8)


@register_model(FloatVector)
class _FloatVectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, fe_type.llvm())


f32x8 = FloatVector()


#: ``load_f32x8(a, i)``: the 8 float32 of a (C-contiguous) from flat index i.
load_f32x8 = _loader(f32x8, _array_of(4, kind=types.Float))
#: ``store_f32x8(a, i, v)``: v into a's float32 elements i .. i+7.
store_f32x8 = _storer(f32x8, _array_of(4, kind=types.Float))


@intrinsic
def load_i8_as_f32x8(typingctx, array, index):
    """The 8 signed bytes of an int8 array from flat index i, as float32 (exact)."""
    if not (isinstance(array, types.Array) and array.dtype == types.int8
            and array.layout == "C" and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        v = builder.load(_pointer(context, builder, signature.args[0], args[0], index,
                                  ir.VectorType(ir.IntType(8), 8)), align=1)
        return builder.sitofp(v, f32x8.llvm())
    return f32x8(array, index), codegen


@intrinsic
def mul_f32(typingctx, a, b):
    """Lane by lane ``a * b`` of two f32x8, rounded as float32 (no contraction)."""
    if not (a == f32x8 and b == f32x8):
        return None

    def codegen(context, builder, signature, args):
        return builder.fmul(args[0], args[1])
    return f32x8(a, b), codegen


@intrinsic
def neg_f32(typingctx, a):
    """Lane by lane ``-a`` of an f32x8 (the sign flipped, exactly)."""
    if a != f32x8:
        return None

    def codegen(context, builder, signature, args):
        return builder.fneg(args[0])
    return f32x8(a), codegen


# ----------------------------------------------------------------------------- arithmetic
@intrinsic
def add(typingctx, a, b):
    """Lane by lane ``a + b`` (wrapping) of two vectors of one type."""
    if not (isinstance(a, IntVector) and a == b):
        return None

    def codegen(context, builder, signature, args):
        return builder.add(args[0], args[1])
    return a(a, b), codegen


def _zeros(vector):
    @intrinsic
    def zeros(typingctx):
        def codegen(context, builder, signature, args):
            return ir.Constant(vector.llvm(), [0] * vector.lanes)
        return vector(), codegen
    zeros.__doc__ = f"An {vector.name} of zeros."
    return zeros


zeros_i16x16, zeros_i32x8, zeros_i32x16 = _zeros(i16x16), _zeros(i32x8), _zeros(i32x16)


def _pairwise(builder, a, b, extend_a, extend_b, wide: ir.VectorType):
    """``a[2l] * b[2l] + a[2l+1] * b[2l+1]`` in the lanes of ``wide``, in generic IR."""
    n = wide.count
    even, odd = _mask(range(0, 2 * n, 2)), _mask(range(1, 2 * n, 2))

    def part(v, mask, extend):
        return extend(builder.shuffle_vector(v, v, mask), wide)
    return builder.add(builder.mul(part(a, even, extend_a), part(b, even, extend_b)),
                       builder.mul(part(a, odd, extend_a), part(b, odd, extend_b)))


@intrinsic
def dot_u8_i8(typingctx, u, s):
    """``u[2l] * s[2l] + u[2l+1] * s[2l+1]`` for the 16 lanes l of an i16x16: u's bytes
    unsigned, s's signed (x86's ``pmaddubsw``). The caller keeps each sum within int16 (it
    is then exact; pmaddubsw would saturate)."""
    if not (u == i8x32 and s == i8x32):
        return None

    def codegen(context, builder, signature, args):
        if uses_avx2(context):
            f = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(i16x16.llvm(), [i8x32.llvm()] * 2),
                "llvm.x86.avx2.pmadd.ub.sw")
            return builder.call(f, list(args))
        return _pairwise(builder, args[0], args[1], builder.zext, builder.sext, i16x16.llvm())
    return i16x16(u, s), codegen


@intrinsic
def dot_i16(typingctx, a, b):
    """``a[2l] * b[2l] + a[2l+1] * b[2l+1]`` for the 8 int32 lanes l (x86's ``pmaddwd``;
    exact)."""
    if not (a == i16x16 and b == i16x16):
        return None

    def codegen(context, builder, signature, args):
        if uses_avx2(context):
            f = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(i32x8.llvm(), [i16x16.llvm()] * 2),
                "llvm.x86.avx2.pmadd.wd")
            return builder.call(f, list(args))
        return _pairwise(builder, args[0], args[1], builder.sext, builder.sext, i32x8.llvm())
    return i32x8(a, b), codegen
