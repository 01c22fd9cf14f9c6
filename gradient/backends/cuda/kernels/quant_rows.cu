// Row lookup in a GGML-quantized table: out[i, :] = dequant(W)[ids[i], :] (a quantized embedding).
//
// Kernels (out is float32 whatever the table's type, so there is no dtype suffix):
//
//   get_rows_q8_0 / get_rows_q4_0 / get_rows_q4_1 / get_rows_q5_0 / get_rows_q5_1 /
//   get_rows_q2_k / get_rows_q3_k / get_rows_q4_k / get_rows_q5_k / get_rows_q6_k(
//       const unsigned char* w,    // rows * (cols / QK) blocks of the type, row-major (as in GGUF)
//       const long long*     ids,  // (n_ids,) int64 row indices (any shape, flattened)
//       float*               out,  // (n_ids, cols), contiguous
//       long long n_ids,
//       int rows, int cols)        // cols a multiple of the block size QK (32; 256 for K types)
//
//   Each value is bit-exact with gguf-py's gguf.quants.dequantize (numpy, float32): the
//   f16 scales are converted exactly (subnormals and signed zeros included) and every product
//   and sum is rounded on its own (__fmul_rn / __fadd_rn / __fsub_rn: no fused multiply-add), in
//   the order of the reference:
//     Q8_0  34 B / 32 values:  f16 d, int8 q[32]                d * q
//     Q4_0  18 B / 32 values:  f16 d, u8 qs[16]                 d * (nibble - 8)
//     Q4_1  20 B / 32 values:  f16 d, f16 m, u8 qs[16]          d * nibble + m
//     Q5_0  22 B / 32 values:  f16 d, u32 qh, u8 qs[16]         d * ((nibble | bit << 4) - 16)
//     Q5_1  24 B / 32 values:  f16 d, f16 m, u32 qh, u8 qs[16]  d * (nibble | bit << 4) + m
//           (value j: low nibble of qs[j] for j < 16, high nibble of qs[j - 16] for j >= 16;
//            bit j of the little-endian qh is its fifth bit)
//     Q2_K  84 B / 256 values: u8 scales[16], u8 qs[64], f16 d, f16 dmin
//           value i (h = i / 128, t = i % 128 / 32, j = i % 32): q = (qs[32h + j] >> 2t) & 3,
//           s = scales[i / 16]: (d * (s & 15)) * q - dmin * (s >> 4)
//     Q3_K 110 B / 256 values: u8 hmask[32], u8 qs[64], u8 scales[12], f16 d
//           low 2 bits as Q2_K; q = low - 4 unless bit i / 32 of hmask[i % 32] is set;
//           6-bit scale k = i / 16: low 4 bits from scales[k % 8] (high nibble when k >= 8),
//           top 2 bits from scales[8 + k % 4] >> 2 * (k / 4); (d * (scale - 32)) * q
//     Q4_K 144 B / 256 values: f16 d, f16 dmin, u8 scales[12], u8 qs[128]
//           value i (c = i / 64, j = i % 32): nibble of qs[32c + j] (high when i % 64 >= 32);
//           sub-block s = i / 32 with 6-bit scale sc and min mn packed in scales[12]:
//           (d * sc) * nibble - dmin * mn
//     Q5_K 176 B / 256 values: f16 d, f16 dmin, u8 scales[12], u8 qh[32], u8 qs[128]
//           as Q4_K with q = nibble | (bit i / 32 of qh[i % 32]) << 4
//     Q6_K 210 B / 256 values: u8 ql[128], u8 qh[64], int8 scales[16], f16 d
//           value i (h = i / 128, j = i % 128): low 4 bits from ql[64h + j % 64] (high nibble when
//           j >= 64), top 2 bits from qh[32h + j % 32] >> (2 * (j / 32));
//           (d * scales[i / 16]) * (q6 - 32)
//   An id outside [0, rows) is not read: its output row is NaN. The check costs no host sync; the
//   caller that wants an error checks the ids itself.
//   Blocks are read byte by byte, so w needs no alignment (most blocks are not 4-byte aligned).
//
// Launch configuration (all kernels):
//   grid  = (min(n_ids, 2^31 - 1), 1, 1)   one block per id; blocks stride over the ids when n_ids
//                                          is larger, so any grid size is correct
//   block = (min(1024, cols rounded up to 32), 1, 1)  any size up to 1024 works: each thread takes
//                                          the columns threadIdx.x, threadIdx.x + blockDim.x, ...
//   shared memory: none.
//
// How: each thread decodes one value at a time from its block's bytes (the scales are re-read per
// value; they sit in L1 with the rest of the block), so consecutive threads write consecutive
// floats of the output row (coalesced stores) and read neighbouring bytes of the row's blocks.

#include <cuda_fp16.h>

typedef unsigned char qr_u8;

// An f16 field at any address: two byte loads, converted exactly.
__device__ __forceinline__ float qr_f16(const qr_u8* p) {
    const unsigned short bits = (unsigned short)(p[0] | (p[1] << 8));
    return __half2float(__ushort_as_half(bits));
}

// Nibble j (0..31) of a 32-value block's 16 bytes: low nibbles are values 0..15, high 16..31.
__device__ __forceinline__ int qr_nibble(const qr_u8* qs, int j) {
    return j < 16 ? (qs[j] & 0xF) : (qs[j - 16] >> 4);
}

// Bit j (0..31) of the little-endian 32-bit field at qh.
__device__ __forceinline__ int qr_bit(const qr_u8* qh, int j) {
    return (qh[j >> 3] >> (j & 7)) & 1;
}

// ---- one value of one block: QK values per block, BYTES per block; value(b, i) is value i -----

struct QrQ8_0 {
    static const int QK = 32, BYTES = 34;
    static __device__ __forceinline__ float value(const qr_u8* b, int i) {
        return __fmul_rn((float)(signed char)b[2 + i], qr_f16(b));
    }
};

struct QrQ4_0 {
    static const int QK = 32, BYTES = 18;
    static __device__ __forceinline__ float value(const qr_u8* b, int i) {
        return __fmul_rn(qr_f16(b), (float)(qr_nibble(b + 2, i) - 8));
    }
};

struct QrQ4_1 {
    static const int QK = 32, BYTES = 20;
    static __device__ __forceinline__ float value(const qr_u8* b, int i) {
        return __fadd_rn(__fmul_rn(qr_f16(b), (float)qr_nibble(b + 4, i)), qr_f16(b + 2));
    }
};

struct QrQ5_0 {
    static const int QK = 32, BYTES = 22;
    static __device__ __forceinline__ float value(const qr_u8* b, int i) {
        const int q = qr_nibble(b + 6, i) | (qr_bit(b + 2, i) << 4);
        return __fmul_rn(qr_f16(b), (float)(q - 16));
    }
};

struct QrQ5_1 {
    static const int QK = 32, BYTES = 24;
    static __device__ __forceinline__ float value(const qr_u8* b, int i) {
        const int q = qr_nibble(b + 8, i) | (qr_bit(b + 4, i) << 4);
        return __fadd_rn(__fmul_rn(qr_f16(b), (float)q), qr_f16(b + 2));
    }
};

// The 2-bit field of value i of a K block's qs[64] (Q2_K, Q3_K): 32 bytes per 128 values, four
// values per byte, 32 values apart.
__device__ __forceinline__ int qr_crumb(const qr_u8* qs, int i) {
    return (qs[32 * (i >> 7) + (i & 31)] >> (2 * ((i & 127) >> 5))) & 3;
}

struct QrQ2_K {
    static const int QK = 256, BYTES = 84;
    static __device__ __forceinline__ float value(const qr_u8* b, int i) {
        const int s = b[i >> 4];
        const float dl = __fmul_rn(qr_f16(b + 80), (float)(s & 0xF));
        const float ml = __fmul_rn(qr_f16(b + 82), (float)(s >> 4));
        return __fsub_rn(__fmul_rn(dl, (float)qr_crumb(b + 16, i)), ml);
    }
};

struct QrQ3_K {
    static const int QK = 256, BYTES = 110;
    static __device__ __forceinline__ float value(const qr_u8* b, int i) {
        const qr_u8* sc = b + 96;
        const int k = i >> 4;
        const int lo = (sc[k & 7] >> (4 * (k >> 3))) & 0xF;
        const int hi = (sc[8 + (k & 3)] >> (2 * (k >> 2))) & 3;
        const float dl = __fmul_rn(qr_f16(b + 108), (float)((lo | (hi << 4)) - 32));
        const int high = (b[i & 31] >> (i >> 5)) & 1;  // hmask: set means no offset
        const int q = qr_crumb(b + 32, i) - (high ? 0 : 4);
        return __fmul_rn(dl, (float)q);
    }
};

// Scale and min of Q4_K/Q5_K sub-block j (0..7) from the 12 packed bytes: 6 bits each; for j >= 4
// the low 4 bits sit in byte j + 4 and the top 2 bits in the spare top bits of bytes j - 4 and j.
__device__ __forceinline__ void qr_scale_min_k4(const qr_u8* s, int j, int& sc, int& mn) {
    if (j < 4) {
        sc = s[j] & 63;
        mn = s[j + 4] & 63;
    } else {
        sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

// (d * sc) * q - dmin * mn for value i of a Q4_K/Q5_K block whose 5- or 4-bit value is q.
__device__ __forceinline__ float qr_k4_value(const qr_u8* b, int i, int q) {
    int sc, mn;
    qr_scale_min_k4(b + 4, i >> 5, sc, mn);
    const float dl = __fmul_rn(qr_f16(b), (float)sc);
    const float ml = __fmul_rn(qr_f16(b + 2), (float)mn);
    return __fsub_rn(__fmul_rn(dl, (float)q), ml);
}

// The 4-bit field of value i of a Q4_K/Q5_K block's qs[128]: 32 bytes per 64 values, the low
// nibbles first.
__device__ __forceinline__ int qr_k4_nibble(const qr_u8* qs, int i) {
    return (qs[32 * (i >> 6) + (i & 31)] >> (4 * ((i >> 5) & 1))) & 0xF;
}

struct QrQ4_K {
    static const int QK = 256, BYTES = 144;
    static __device__ __forceinline__ float value(const qr_u8* b, int i) {
        return qr_k4_value(b, i, qr_k4_nibble(b + 16, i));
    }
};

struct QrQ5_K {
    static const int QK = 256, BYTES = 176;
    static __device__ __forceinline__ float value(const qr_u8* b, int i) {
        const int high = (b[16 + (i & 31)] >> (i >> 5)) & 1;
        return qr_k4_value(b, i, qr_k4_nibble(b + 48, i) | (high << 4));
    }
};

struct QrQ6_K {
    static const int QK = 256, BYTES = 210;
    static __device__ __forceinline__ float value(const qr_u8* b, int i) {
        const int h = i >> 7, j = i & 127;
        const int lo = (b[64 * h + (j & 63)] >> (4 * (j >> 6))) & 0xF;
        const int hi = (b[128 + 32 * h + (j & 31)] >> (2 * (j >> 5))) & 3;
        const float dl = __fmul_rn(qr_f16(b + 208), (float)(signed char)b[192 + (i >> 4)]);
        return __fmul_rn(dl, (float)((lo | (hi << 4)) - 32));
    }
};

// ---- the lookup shared by every type ------------------------------------------------------------

template <class Q>
__device__ __forceinline__ void qr_get_rows(const qr_u8* __restrict__ w,
                                            const long long* __restrict__ ids,
                                            float* __restrict__ out, long long n_ids, int rows,
                                            int cols) {
    const long long row_bytes = (long long)(cols / Q::QK) * Q::BYTES;
    for (long long r = blockIdx.x; r < n_ids; r += gridDim.x) {
        const long long id = ids[r];
        float* o = out + r * cols;
        if (id < 0 || id >= rows) {  // never read past the table: a NaN row marks the bad id
            for (int c = threadIdx.x; c < cols; c += blockDim.x) o[c] = __int_as_float(0x7fffffff);
            continue;
        }
        const qr_u8* wr = w + id * row_bytes;
        for (int c = threadIdx.x; c < cols; c += blockDim.x)
            o[c] = Q::value(wr + (long long)(c / Q::QK) * Q::BYTES, c % Q::QK);
    }
}

#define QR_DEFINE(NAME, Q)                                                                      \
    extern "C" __global__ void NAME(const unsigned char* __restrict__ w,                         \
                                    const long long* __restrict__ ids, float* __restrict__ out,  \
                                    long long n_ids, int rows, int cols) {                       \
        qr_get_rows<Q>(w, ids, out, n_ids, rows, cols);                                         \
    }

QR_DEFINE(get_rows_q8_0, QrQ8_0)
QR_DEFINE(get_rows_q4_0, QrQ4_0)
QR_DEFINE(get_rows_q4_1, QrQ4_1)
QR_DEFINE(get_rows_q5_0, QrQ5_0)
QR_DEFINE(get_rows_q5_1, QrQ5_1)
QR_DEFINE(get_rows_q2_k, QrQ2_K)
QR_DEFINE(get_rows_q3_k, QrQ3_K)
QR_DEFINE(get_rows_q4_k, QrQ4_K)
QR_DEFINE(get_rows_q5_k, QrQ5_K)
QR_DEFINE(get_rows_q6_k, QrQ6_K)
