// Quantized matrix-vector products on raw GGML/GGUF blocks: y = W x for a few vectors at once.
//
// Kernels (x and y are float32 whatever the weight type, so there is no dtype suffix):
//
//   matvec_q8_0 / matvec_q4_0 / matvec_q4_1 / matvec_q5_0 / matvec_q5_1 /
//   matvec_q2_k / matvec_q3_k / matvec_q4_k / matvec_q5_k / matvec_q6_k(
//       const unsigned char* w,   // rows * (cols / QK) blocks of the type, row-major, as stored in GGUF
//       const float*         x,   // (n_vec, cols), contiguous
//       float*               y,   // (n_vec, rows), contiguous
//       int rows, int cols,       // cols a multiple of the block size QK (32, or 256 for the K types)
//       int n_vec)                // any n_vec >= 1; up to 8 vectors share one pass over W
//
//   computes y[v, r] = sum_c dequant(W)[r, c] * x[v, c], with the block layouts and dequantization
//   formulas of ggml (gguf-py's gguf/quants.py is the reference):
//     Q8_0  34 B / 32 values:  f16 d, int8 q[32]                       value = d * q
//     Q4_0  18 B / 32 values:  f16 d, u8 qs[16]                        value = d * (nibble - 8)
//     Q4_1  20 B / 32 values:  f16 d, f16 m, u8 qs[16]                 value = d * nibble + m
//     Q5_0  22 B / 32 values:  f16 d, u32 qh, u8 qs[16]               value = d * (q5 - 16)
//     Q5_1  24 B / 32 values:  f16 d, f16 m, u32 qh, u8 qs[16]        value = d * q5 + m
//           (Q4_0 .. Q5_1: low nibbles of qs are values 0..15, high nibbles values 16..31;
//            Q5: q5 = nibble | bit << 4, bit j of the little-endian qh for value j)
//     Q2_K  84 B / 256 values: u8 scales[16], u8 qs[64], f16 d, f16 dmin
//           value i (h = i / 128, t = i % 128 / 32, j = i % 32): q = (qs[32h + j] >> 2t) & 3,
//           s = scales[i / 16]: value = d * (s & 15) * q - dmin * (s >> 4)
//     Q3_K 110 B / 256 values: u8 hmask[32], u8 qs[64], u8 scales[12], f16 d
//           low 2 bits as Q2_K; q = low - 4 unless bit i / 32 of hmask[i % 32] is set;
//           6-bit scale k = i / 16: low 4 bits from scales[k % 8] (high nibble when k >= 8),
//           top 2 bits from scales[8 + k % 4] >> 2 * (k / 4); value = d * (scale - 32) * q
//     Q4_K 144 B / 256 values: f16 d, f16 dmin, u8 scales[12], u8 qs[128]
//           eight sub-blocks of 32 with 6-bit scale sc and min mn packed in scales[12];
//           qs[32c + i]: low nibble value 64c + i, high nibble value 64c + 32 + i;
//           value = d * sc[s] * nibble - dmin * mn[s]  (s = sub-block of the value)
//     Q5_K 176 B / 256 values: f16 d, f16 dmin, u8 scales[12], u8 qh[32], u8 qs[128]
//           as Q4_K with q = nibble | (bit i / 32 of qh[i % 32]) << 4
//     Q6_K 210 B / 256 values: u8 ql[128], u8 qh[64], int8 scales[16], f16 d
//           value i (h = i / 128, j = i % 128): low 4 bits from ql[64h + j % 64] (high nibble when
//           j >= 64), top 2 bits from qh[32h + j % 32] >> (2 * (j / 32));
//           value = d * scales[i / 16] * (q6 - 32)
//   Blocks are read with byte or funnel-shifted word loads, so w needs no alignment (Q8_0, Q4_0,
//   Q5_0, Q2_K, Q3_K and Q6_K blocks are not 4-byte aligned). Math and accumulation are float32.
//
// Launch configuration (all ten kernels):
//   grid  = (ceil(rows / 4), 1, 1)
//   block = (32, 4, 1)                     one warp per output row (threadIdx.x = lane, threadIdx.y
//                                          = row within the block); blockDim.x must be 32, any
//                                          blockDim.y works (grid.x = ceil(rows / blockDim.y))
//   shared memory: none.
//
// How: the lanes of a warp split a row into small runs of bytes (Q8_0: 8 values per lane, 4 lanes
// per block; Q4_0..Q5_1: 4 bytes = 8 values per lane, 4 lanes per block; the K types: 16 lanes
// per super-block, 16 values per lane), so one warp step reads a contiguous stretch of the row. Each
// lane keeps one float32 sum per vector; a shuffle reduction gives the row's result at the end.

#include <cuda_fp16.h>
#include <cuda_bf16.h>

#define QMV_MAX_VEC 8
#define QMV_FULL_MASK 0xffffffffu

typedef unsigned char qmv_u8;
typedef unsigned int qmv_u32;
typedef unsigned long long qmv_u64;

// An f16 field at any address: two byte loads.
__device__ __forceinline__ float qmv_f16(const qmv_u8* p) {
    const unsigned short bits = (unsigned short)(p[0] | (p[1] << 8));
    return __half2float(__ushort_as_half(bits));
}

// Four little-endian bytes at any address: one aligned word load, or two and a funnel shift.
// Only words holding at least one of the four bytes are read.
__device__ __forceinline__ qmv_u32 qmv_u32_at(const qmv_u8* p) {
    const qmv_u64 a = (qmv_u64)p;
    const qmv_u32* word = (const qmv_u32*)(a & ~(qmv_u64)3);
    const qmv_u32 shift = (qmv_u32)(a & 3) * 8;
    const qmv_u32 lo = word[0];
    return shift == 0 ? lo : __funnelshift_r(lo, word[1], shift);
}

// Four consecutive floats of x (float4 load when x is 16-byte aligned).
__device__ __forceinline__ void qmv_x4(const float* p, bool aligned, float (&v)[4]) {
    if (aligned) {
        const float4 f = *(const float4*)p;
        v[0] = f.x; v[1] = f.y; v[2] = f.z; v[3] = f.w;
    } else {
        v[0] = p[0]; v[1] = p[1]; v[2] = p[2]; v[3] = p[3];
    }
}

// Low / high nibble, and signed value, of byte k (0..3) of a little-endian word.
__device__ __forceinline__ float qmv_lo(qmv_u32 q, int k) { return (float)((q >> (8 * k)) & 0xF); }
__device__ __forceinline__ float qmv_hi(qmv_u32 q, int k) { return (float)((q >> (8 * k + 4)) & 0xF); }
__device__ __forceinline__ float qmv_i8(qmv_u32 q, int k) { return (float)(signed char)((q >> (8 * k)) & 0xFF); }

// ---- one lane's share of one block, for every vector ----------------------------------------
// Each type: QK values per block, BYTES per block, LANES lanes per block; dot() adds the lane's
// part of (block . x[v, block's columns]) to acc[v] for v < nv. x points at the block's first
// column of vector 0; vectors are `cols` apart.

struct QmvQ8_0 {
    static const int QK = 32, BYTES = 34, LANES = 4;
    template <int NV>
    static __device__ __forceinline__ void dot(const qmv_u8* b, int sub, const float* x, int cols, int nv,
                                               bool xa, float (&acc)[NV]) {
        const float d = qmv_f16(b);
        const qmv_u32 q0 = qmv_u32_at(b + 2 + 8 * sub);
        const qmv_u32 q1 = qmv_u32_at(b + 6 + 8 * sub);
#pragma unroll
        for (int v = 0; v < NV; ++v) {
            if (v < nv) {
                float x0[4], x1[4];
                qmv_x4(x + (qmv_u64)v * cols + 8 * sub, xa, x0);
                qmv_x4(x + (qmv_u64)v * cols + 8 * sub + 4, xa, x1);
                float s = 0.0f;
#pragma unroll
                for (int k = 0; k < 4; ++k) s = fmaf(qmv_i8(q0, k), x0[k], fmaf(qmv_i8(q1, k), x1[k], s));
                acc[v] = fmaf(d, s, acc[v]);
            }
        }
    }
};

struct QmvQ4_0 {
    static const int QK = 32, BYTES = 18, LANES = 4;
    template <int NV>
    static __device__ __forceinline__ void dot(const qmv_u8* b, int sub, const float* x, int cols, int nv,
                                               bool xa, float (&acc)[NV]) {
        const float d = qmv_f16(b);
        const qmv_u32 q = qmv_u32_at(b + 2 + 4 * sub);  // values 4sub..4sub+3 and 16+4sub..16+4sub+3
#pragma unroll
        for (int v = 0; v < NV; ++v) {
            if (v < nv) {
                float xl[4], xh[4];
                qmv_x4(x + (qmv_u64)v * cols + 4 * sub, xa, xl);
                qmv_x4(x + (qmv_u64)v * cols + 16 + 4 * sub, xa, xh);
                float s = 0.0f;
#pragma unroll
                for (int k = 0; k < 4; ++k)
                    s = fmaf(qmv_lo(q, k) - 8.0f, xl[k], fmaf(qmv_hi(q, k) - 8.0f, xh[k], s));
                acc[v] = fmaf(d, s, acc[v]);
            }
        }
    }
};

struct QmvQ4_1 {
    static const int QK = 32, BYTES = 20, LANES = 4;
    template <int NV>
    static __device__ __forceinline__ void dot(const qmv_u8* b, int sub, const float* x, int cols, int nv,
                                               bool xa, float (&acc)[NV]) {
        const float d = qmv_f16(b);
        const float m = qmv_f16(b + 2);
        const qmv_u32 q = qmv_u32_at(b + 4 + 4 * sub);
#pragma unroll
        for (int v = 0; v < NV; ++v) {
            if (v < nv) {
                float xl[4], xh[4];
                qmv_x4(x + (qmv_u64)v * cols + 4 * sub, xa, xl);
                qmv_x4(x + (qmv_u64)v * cols + 16 + 4 * sub, xa, xh);
                float s = 0.0f, sx = 0.0f;
#pragma unroll
                for (int k = 0; k < 4; ++k) {
                    s = fmaf(qmv_lo(q, k), xl[k], fmaf(qmv_hi(q, k), xh[k], s));
                    sx += xl[k] + xh[k];
                }
                acc[v] = fmaf(d, s, fmaf(m, sx, acc[v]));
            }
        }
    }
};


struct QmvQ5_0 {
    static const int QK = 32, BYTES = 22, LANES = 4;
    template <int NV>
    static __device__ __forceinline__ void dot(const qmv_u8* b, int sub, const float* x, int cols, int nv,
                                               bool xa, float (&acc)[NV]) {
        const float d = qmv_f16(b);
        const qmv_u32 qh = qmv_u32_at(b + 2);            // bit j: the fifth bit of value j
        const qmv_u32 q = qmv_u32_at(b + 6 + 4 * sub);   // values 4sub+k (low), 16+4sub+k (high)
        const qmv_u32 hl = qh >> (4 * sub), hh = qh >> (16 + 4 * sub);
        float ql[4], qhi[4];
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            ql[k] = (float)((int)(((q >> (8 * k)) & 0xF) | (((hl >> k) & 1) << 4)) - 16);
            qhi[k] = (float)((int)(((q >> (8 * k + 4)) & 0xF) | (((hh >> k) & 1) << 4)) - 16);
        }
#pragma unroll
        for (int v = 0; v < NV; ++v) {
            if (v < nv) {
                float xl[4], xh[4];
                qmv_x4(x + (qmv_u64)v * cols + 4 * sub, xa, xl);
                qmv_x4(x + (qmv_u64)v * cols + 16 + 4 * sub, xa, xh);
                float s = 0.0f;
#pragma unroll
                for (int k = 0; k < 4; ++k) s = fmaf(ql[k], xl[k], fmaf(qhi[k], xh[k], s));
                acc[v] = fmaf(d, s, acc[v]);
            }
        }
    }
};

struct QmvQ5_1 {
    static const int QK = 32, BYTES = 24, LANES = 4;
    template <int NV>
    static __device__ __forceinline__ void dot(const qmv_u8* b, int sub, const float* x, int cols, int nv,
                                               bool xa, float (&acc)[NV]) {
        const float d = qmv_f16(b);
        const float m = qmv_f16(b + 2);
        const qmv_u32 qh = qmv_u32_at(b + 4);
        const qmv_u32 q = qmv_u32_at(b + 8 + 4 * sub);
        const qmv_u32 hl = qh >> (4 * sub), hh = qh >> (16 + 4 * sub);
        float ql[4], qhi[4];
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            ql[k] = (float)(((q >> (8 * k)) & 0xF) | (((hl >> k) & 1) << 4));
            qhi[k] = (float)(((q >> (8 * k + 4)) & 0xF) | (((hh >> k) & 1) << 4));
        }
#pragma unroll
        for (int v = 0; v < NV; ++v) {
            if (v < nv) {
                float xl[4], xh[4];
                qmv_x4(x + (qmv_u64)v * cols + 4 * sub, xa, xl);
                qmv_x4(x + (qmv_u64)v * cols + 16 + 4 * sub, xa, xh);
                float s = 0.0f, sx = 0.0f;
#pragma unroll
                for (int k = 0; k < 4; ++k) {
                    s = fmaf(ql[k], xl[k], fmaf(qhi[k], xh[k], s));
                    sx += xl[k] + xh[k];
                }
                acc[v] = fmaf(d, s, fmaf(m, sx, acc[v]));
            }
        }
    }
};

// Q2_K and Q3_K share Q6_K's lane layout: lane sub takes half h = sub / 8 of the super-block and
// positions c0..c0+3 (c0 = 4 * (sub % 8)) of it; the byte of position c holds the 2-bit fields of
// values 128h + c + 32t, t = 0..3 (bits 2t..2t+1). Values c0..c0+3 + 32t share the 16-value
// sub-block 8h + 2t + c0 / 16.

struct QmvQ2_K {
    static const int QK = 256, BYTES = 84, LANES = 16;
    template <int NV>
    static __device__ __forceinline__ void dot(const qmv_u8* b, int sub, const float* x, int cols, int nv,
                                               bool xa, float (&acc)[NV]) {
        const int h = sub >> 3;
        const int c0 = 4 * (sub & 7);
        const qmv_u32 qs = qmv_u32_at(b + 16 + 32 * h + c0);
        const float d = qmv_f16(b + 80);
        const float dmin = qmv_f16(b + 82);
        float dl[4], ml[4], q[4][4];
#pragma unroll
        for (int t = 0; t < 4; ++t) {
            const int s = b[8 * h + 2 * t + (c0 >> 4)];
            dl[t] = d * (float)(s & 0xF);
            ml[t] = dmin * (float)(s >> 4);
#pragma unroll
            for (int k = 0; k < 4; ++k) q[t][k] = (float)((qs >> (8 * k + 2 * t)) & 3);
        }
#pragma unroll
        for (int v = 0; v < NV; ++v) {
            if (v < nv) {
                const float* xv = x + (qmv_u64)v * cols + 128 * h + c0;
                float s = 0.0f;
#pragma unroll
                for (int t = 0; t < 4; ++t) {
                    float xt[4];
                    qmv_x4(xv + 32 * t, xa, xt);
                    float st = 0.0f, sx = 0.0f;
#pragma unroll
                    for (int k = 0; k < 4; ++k) {
                        st = fmaf(q[t][k], xt[k], st);
                        sx += xt[k];
                    }
                    s = fmaf(dl[t], st, fmaf(-ml[t], sx, s));
                }
                acc[v] += s;
            }
        }
    }
};

struct QmvQ3_K {
    static const int QK = 256, BYTES = 110, LANES = 16;
    template <int NV>
    static __device__ __forceinline__ void dot(const qmv_u8* b, int sub, const float* x, int cols, int nv,
                                               bool xa, float (&acc)[NV]) {
        const int h = sub >> 3;
        const int c0 = 4 * (sub & 7);
        const qmv_u32 hm = qmv_u32_at(b + c0);               // hmask[c]: bit 4h + t for value t
        const qmv_u32 qs = qmv_u32_at(b + 32 + 32 * h + c0);
        const qmv_u8* sc = b + 96;
        const float d = qmv_f16(b + 108);
        float dl[4], q[4][4];
#pragma unroll
        for (int t = 0; t < 4; ++t) {
            // 6-bit scale k: low 4 bits in sc[k % 8] (high nibble for k >= 8), top 2 bits in
            // sc[8 + k % 4] at bits 2 * (k / 4)
            const int k6 = 8 * h + 2 * t + (c0 >> 4);
            const int lo = (sc[k6 & 7] >> (4 * (k6 >> 3))) & 0xF;
            const int hi = (sc[8 + (k6 & 3)] >> (2 * (k6 >> 2))) & 3;
            dl[t] = d * (float)((lo | (hi << 4)) - 32);
#pragma unroll
            for (int k = 0; k < 4; ++k) {
                const int low = (int)((qs >> (8 * k + 2 * t)) & 3);
                const int set = (int)((hm >> (8 * k + 4 * h + t)) & 1);  // set: no offset
                q[t][k] = (float)(low - (set ? 0 : 4));
            }
        }
#pragma unroll
        for (int v = 0; v < NV; ++v) {
            if (v < nv) {
                const float* xv = x + (qmv_u64)v * cols + 128 * h + c0;
                float s = 0.0f;
#pragma unroll
                for (int t = 0; t < 4; ++t) {
                    float xt[4];
                    qmv_x4(xv + 32 * t, xa, xt);
                    float st = 0.0f;
#pragma unroll
                    for (int k = 0; k < 4; ++k) st = fmaf(q[t][k], xt[k], st);
                    s = fmaf(dl[t], st, s);
                }
                acc[v] += s;
            }
        }
    }
};

// Scale and min of Q4_K sub-block j (0..7) from the 12 packed bytes: 6 bits each; for j >= 4 the
// low 4 bits sit in byte j + 4 and the top 2 bits in the spare top bits of bytes j - 4 and j.
__device__ __forceinline__ void qmv_scale_min_k4(const qmv_u8* s, int j, float& sc, float& mn) {
    if (j < 4) {
        sc = (float)(s[j] & 63);
        mn = (float)(s[j + 4] & 63);
    } else {
        sc = (float)((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
        mn = (float)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

struct QmvQ4_K {
    static const int QK = 256, BYTES = 144, LANES = 16;
    template <int NV>
    static __device__ __forceinline__ void dot(const qmv_u8* b, int sub, const float* x, int cols, int nv,
                                               bool xa, float (&acc)[NV]) {
        const int c = sub >> 2;        // 32-byte chunk of qs: sub-blocks 2c (low) and 2c+1 (high)
        const int e = 8 * (sub & 3);   // the lane's 8 bytes within the chunk
        const float d = qmv_f16(b);
        const float dmin = qmv_f16(b + 2);
        float sc0, mn0, sc1, mn1;
        qmv_scale_min_k4(b + 4, 2 * c, sc0, mn0);
        qmv_scale_min_k4(b + 4, 2 * c + 1, sc1, mn1);
        const float d0 = d * sc0, m0 = dmin * mn0, d1 = d * sc1, m1 = dmin * mn1;
        const qmv_u32 qa = qmv_u32_at(b + 16 + 32 * c + e);
        const qmv_u32 qb = qmv_u32_at(b + 20 + 32 * c + e);
#pragma unroll
        for (int v = 0; v < NV; ++v) {
            if (v < nv) {
                const float* xv = x + (qmv_u64)v * cols + 64 * c + e;
                float xl0[4], xl1[4], xh0[4], xh1[4];
                qmv_x4(xv, xa, xl0);
                qmv_x4(xv + 4, xa, xl1);
                qmv_x4(xv + 32, xa, xh0);
                qmv_x4(xv + 36, xa, xh1);
                float sl = 0.0f, sh = 0.0f, xl = 0.0f, xh = 0.0f;
#pragma unroll
                for (int k = 0; k < 4; ++k) {
                    sl = fmaf(qmv_lo(qa, k), xl0[k], fmaf(qmv_lo(qb, k), xl1[k], sl));
                    sh = fmaf(qmv_hi(qa, k), xh0[k], fmaf(qmv_hi(qb, k), xh1[k], sh));
                    xl += xl0[k] + xl1[k];
                    xh += xh0[k] + xh1[k];
                }
                acc[v] += (d0 * sl - m0 * xl) + (d1 * sh - m1 * xh);
            }
        }
    }
};

struct QmvQ5_K {
    static const int QK = 256, BYTES = 176, LANES = 16;
    template <int NV>
    static __device__ __forceinline__ void dot(const qmv_u8* b, int sub, const float* x, int cols, int nv,
                                               bool xa, float (&acc)[NV]) {
        const int c = sub >> 2;        // as Q4_K: sub-blocks 2c (low nibbles) and 2c+1 (high)
        const int e = 8 * (sub & 3);
        const float d = qmv_f16(b);
        const float dmin = qmv_f16(b + 2);
        float sc0, mn0, sc1, mn1;
        qmv_scale_min_k4(b + 4, 2 * c, sc0, mn0);
        qmv_scale_min_k4(b + 4, 2 * c + 1, sc1, mn1);
        const float d0 = d * sc0, m0 = dmin * mn0, d1 = d * sc1, m1 = dmin * mn1;
        // qh[e..e+7]: bit 2c is the fifth bit of the low value, bit 2c+1 of the high one
        const qmv_u32 ha = qmv_u32_at(b + 16 + e) >> (2 * c);
        const qmv_u32 hb = qmv_u32_at(b + 20 + e) >> (2 * c);
        const qmv_u32 qa = qmv_u32_at(b + 48 + 32 * c + e);
        const qmv_u32 qb = qmv_u32_at(b + 52 + 32 * c + e);
        float l0[4], l1[4], g0[4], g1[4];
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            l0[k] = (float)(((qa >> (8 * k)) & 0xF) | (((ha >> (8 * k)) & 1) << 4));
            l1[k] = (float)(((qb >> (8 * k)) & 0xF) | (((hb >> (8 * k)) & 1) << 4));
            g0[k] = (float)(((qa >> (8 * k + 4)) & 0xF) | (((ha >> (8 * k + 1)) & 1) << 4));
            g1[k] = (float)(((qb >> (8 * k + 4)) & 0xF) | (((hb >> (8 * k + 1)) & 1) << 4));
        }
#pragma unroll
        for (int v = 0; v < NV; ++v) {
            if (v < nv) {
                const float* xv = x + (qmv_u64)v * cols + 64 * c + e;
                float xl0[4], xl1[4], xh0[4], xh1[4];
                qmv_x4(xv, xa, xl0);
                qmv_x4(xv + 4, xa, xl1);
                qmv_x4(xv + 32, xa, xh0);
                qmv_x4(xv + 36, xa, xh1);
                float sl = 0.0f, sh = 0.0f, xl = 0.0f, xh = 0.0f;
#pragma unroll
                for (int k = 0; k < 4; ++k) {
                    sl = fmaf(l0[k], xl0[k], fmaf(l1[k], xl1[k], sl));
                    sh = fmaf(g0[k], xh0[k], fmaf(g1[k], xh1[k], sh));
                    xl += xl0[k] + xl1[k];
                    xh += xh0[k] + xh1[k];
                }
                acc[v] += (d0 * sl - m0 * xl) + (d1 * sh - m1 * xh);
            }
        }
    }
};

struct QmvQ6_K {
    static const int QK = 256, BYTES = 210, LANES = 16;
    template <int NV>
    static __device__ __forceinline__ void dot(const qmv_u8* b, int sub, const float* x, int cols, int nv,
                                               bool xa, float (&acc)[NV]) {
        const int h = sub >> 3;         // 128-value half of the super-block
        const int c0 = 4 * (sub & 7);   // positions c0..c0+3 of the half, each giving values
                                        // c, c+32, c+64, c+96 (t = 0..3)
        const qmv_u32 la = qmv_u32_at(b + 64 * h + c0);        // ql[c]: t = 0 (low), t = 2 (high)
        const qmv_u32 lb = qmv_u32_at(b + 64 * h + 32 + c0);   // ql[c+32]: t = 1 (low), t = 3 (high)
        const qmv_u32 hh = qmv_u32_at(b + 128 + 32 * h + c0);  // qh[c]: bits 2t..2t+1 for t
        const float d = qmv_f16(b + 208);
        float ds[4];
#pragma unroll
        for (int t = 0; t < 4; ++t) ds[t] = d * (float)(signed char)b[192 + 8 * h + 2 * t + (c0 >> 4)];
        float q[4][4];
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            const qmv_u32 hb = (hh >> (8 * k)) & 0xFF;
            const qmv_u32 a = (la >> (8 * k)) & 0xFF, bb = (lb >> (8 * k)) & 0xFF;
            q[0][k] = (float)((int)((a & 0xF) | ((hb & 3) << 4)) - 32);
            q[1][k] = (float)((int)((bb & 0xF) | (((hb >> 2) & 3) << 4)) - 32);
            q[2][k] = (float)((int)((a >> 4) | (((hb >> 4) & 3) << 4)) - 32);
            q[3][k] = (float)((int)((bb >> 4) | (((hb >> 6) & 3) << 4)) - 32);
        }
#pragma unroll
        for (int v = 0; v < NV; ++v) {
            if (v < nv) {
                const float* xv = x + (qmv_u64)v * cols + 128 * h + c0;
                float s = 0.0f;
#pragma unroll
                for (int t = 0; t < 4; ++t) {
                    float xt[4];
                    qmv_x4(xv + 32 * t, xa, xt);
                    float st = 0.0f;
#pragma unroll
                    for (int k = 0; k < 4; ++k) st = fmaf(q[t][k], xt[k], st);
                    s = fmaf(ds[t], st, s);
                }
                acc[v] += s;
            }
        }
    }
};

// ---- the row loop shared by every type ----------------------------------------------------------

template <class Q, int NV>
__device__ __forceinline__ void qmv_row(const qmv_u8* __restrict__ wr, const float* __restrict__ x,
                                        float* __restrict__ y, int row, int rows, int cols, int n_vec,
                                        int lane, bool xa) {
    const int nb = cols / Q::QK;
    const int per_step = 32 / Q::LANES;  // blocks a warp covers per step
    const int sub = lane % Q::LANES;
    for (int v0 = 0; v0 < n_vec; v0 += NV) {
        const int nv = min(NV, n_vec - v0);
        float acc[NV];
#pragma unroll
        for (int v = 0; v < NV; ++v) acc[v] = 0.0f;
        const float* xv = x + (qmv_u64)v0 * cols;
        for (int i = lane / Q::LANES; i < nb; i += per_step)
            Q::template dot<NV>(wr + (qmv_u64)i * Q::BYTES, sub, xv + (qmv_u64)i * Q::QK, cols, nv, xa, acc);
#pragma unroll
        for (int v = 0; v < NV; ++v) {
            float s = acc[v];
#pragma unroll
            for (int off = 16; off >= 1; off >>= 1) s += __shfl_xor_sync(QMV_FULL_MASK, s, off);
            if (lane == 0 && v < nv) y[(qmv_u64)(v0 + v) * rows + row] = s;
        }
    }
}

template <class Q>
__device__ __forceinline__ void qmv_matvec(const qmv_u8* __restrict__ w, const float* __restrict__ x,
                                           float* __restrict__ y, int rows, int cols, int n_vec) {
    const int row = blockIdx.x * blockDim.y + threadIdx.y;
    if (row >= rows) return;  // the whole warp leaves together: no shuffle is left waiting
    const int lane = threadIdx.x;
    const qmv_u8* wr = w + (qmv_u64)row * (cols / Q::QK) * Q::BYTES;
    const bool xa = ((qmv_u64)x & 15) == 0;  // then every block's columns are 16-byte aligned too
    if (n_vec == 1)
        qmv_row<Q, 1>(wr, x, y, row, rows, cols, n_vec, lane, xa);
    else
        qmv_row<Q, QMV_MAX_VEC>(wr, x, y, row, rows, cols, n_vec, lane, xa);
}

#define QMV_DEFINE(NAME, Q)                                                                            \
    extern "C" __global__ void NAME(const unsigned char* __restrict__ w, const float* __restrict__ x,    \
                                    float* __restrict__ y, int rows, int cols, int n_vec) {             \
        qmv_matvec<Q>(w, x, y, rows, cols, n_vec);                                                     \
    }

QMV_DEFINE(matvec_q8_0, QmvQ8_0)
QMV_DEFINE(matvec_q4_0, QmvQ4_0)
QMV_DEFINE(matvec_q4_1, QmvQ4_1)
QMV_DEFINE(matvec_q4_k, QmvQ4_K)
QMV_DEFINE(matvec_q6_k, QmvQ6_K)
QMV_DEFINE(matvec_q5_0, QmvQ5_0)
QMV_DEFINE(matvec_q5_1, QmvQ5_1)
QMV_DEFINE(matvec_q2_k, QmvQ2_K)
QMV_DEFINE(matvec_q3_k, QmvQ3_K)
QMV_DEFINE(matvec_q5_k, QmvQ5_K)
