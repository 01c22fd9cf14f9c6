// Weight-only quantized products with a scale per group of inputs: the format of
// gradient.quant.PackedWeight, which GPTQ, AWQ, compressed-tensors and quantize(model, "int4" /
// "int8") checkpoints share.
//
// Weight layout (row-major, a row per output feature; "group" divides cols):
//   int4: codes u8 (rows, cols / 2), two codes a byte in blocks of 32 as GGML's Q4_0 orders
//         them (byte j of a block: code j in the low nibble, code j + 16 in the high one), so
//         cols and group are multiples of 32; zero points u8 (rows, cols / group), or none
//         (symmetric: every zero point is 8)
//   int8: codes int8 (rows, cols), symmetric; any cols and group
//   scales (rows, cols / group), float16 (suffix _f16) or float32 (_f32)
//   value = (code - zero point) * scale, exact in float32 (a 4- or 8-bit integer times a
//   float16 fits float32's mantissa). Math and accumulation are float32.
//
// Kernels:
//   gmv_int4_{f16,f32}(codes, scales, x, y, rows, cols, group, n_vec)
//   gmv_int4_zp_{f16,f32}(codes, scales, zeros, x, y, rows, cols, group, n_vec)
//   gmv_int4_x4_{f16,f32}, gmv_int4_zp_x4_{f16,f32}: the same, 4 output rows a warp
//   gmv_int8_{f16,f32}(codes, scales, x, y, rows, cols, group, n_vec)
//       y[v, r] = sum_c W[r, c] * x[v, c] for x (n_vec, cols) and y (n_vec, rows), float32,
//       contiguous; up to 8 vectors share one pass over W (more take several passes).
//       block = (32, any); one output row a warp, grid = (ceil(rows / blockDim.y),), or with
//       _x4 four, grid = (ceil(rows / (4 blockDim.y)),).
//   gdq_int4_{f16,f32}(codes, scales, w, rows, cols, group)
//   gdq_int4_zp_{f16,f32}(codes, scales, zeros, w, rows, cols, group)
//   gdq_int8_{f16,f32}(codes, scales, w, rows, cols, group)
//       the weight as float32 w (rows, cols), for products of many rows of x through cuBLAS.
//       Any 1-d grid and block (grid-stride loop).
//
// How (gmv_int4): as quant_matvec.cu's Q4_0, four lanes share a block of 32 codes, each lane
// one aligned word (8 codes: 4 low nibbles, 4 high ones), so a warp step reads 128 contiguous
// bytes of each of its rows; the block's group gives its scale and zero point. With 4 rows a
// warp, the lane's values of x are loaded once for the 4 (see gmv_int4_rows). int8: each lane
// takes 4 consecutive codes, a warp step 128 codes.

#include <cuda_fp16.h>

#define GMV_MAX_VEC 8
#define GMV_FULL_MASK 0xffffffffu

typedef unsigned char gmv_u8;
typedef unsigned int gmv_u32;
typedef unsigned long long gmv_u64;

__device__ __forceinline__ float gmv_scale(const __half* s, gmv_u64 i) { return __half2float(s[i]); }
__device__ __forceinline__ float gmv_scale(const float* s, gmv_u64 i) { return s[i]; }

// Four consecutive floats of x (float4 load when 16-byte aligned).
__device__ __forceinline__ void gmv_x4(const float* p, bool aligned, float (&v)[4]) {
    if (aligned) {
        const float4 f = *(const float4*)p;
        v[0] = f.x; v[1] = f.y; v[2] = f.z; v[3] = f.w;
    } else {
        v[0] = p[0]; v[1] = p[1]; v[2] = p[2]; v[3] = p[3];
    }
}

__device__ __forceinline__ float gmv_warp_sum(float s) {
#pragma unroll
    for (int off = 16; off >= 1; off >>= 1) s += __shfl_xor_sync(GMV_FULL_MASK, s, off);
    return s;
}

// ---- int4: R rows a warp, NV vectors at a time ---------------------------------------------------
// A lane's 8 values of x serve all the warp's R rows: x is read once per R rows (with several
// vectors its loads, not the codes', bound a one-row-a-warp loop: 128 bytes of x per 16 of
// codes a vector), at the cost of R times fewer warps.
template <class S, int R, int NV>
__device__ __forceinline__ void gmv_int4_rows(const gmv_u8* __restrict__ codes, const S* __restrict__ scales,
                                              const gmv_u8* __restrict__ zeros, const float* __restrict__ x,
                                              float* __restrict__ y, int row0, int nr, int rows, int cols,
                                              int group, int n_vec, int lane, bool xa) {
    const int nb = cols / 32, sub = lane & 3, groups = cols / group;
    const gmv_u64 row_bytes = (gmv_u64)cols / 2;
    for (int v0 = 0; v0 < n_vec; v0 += NV) {
        const int nv = min(NV, n_vec - v0);
        float acc[R][NV];
#pragma unroll
        for (int j = 0; j < R; ++j)
#pragma unroll
            for (int v = 0; v < NV; ++v) acc[j][v] = 0.0f;
        const float* xv = x + (gmv_u64)v0 * cols;
        for (int i = lane >> 2; i < nb; i += 8) {
            const int g = (32 * i) / group;
            float d[R], lo[R][4], hi[R][4];
#pragma unroll
            for (int j = 0; j < R; ++j) {
                const gmv_u64 r = (gmv_u64)row0 + (j < nr ? j : 0);  // rows past the end: row0's
                const gmv_u64 f = r * groups + g;
                d[j] = j < nr ? gmv_scale(scales, f) : 0.0f;
                const float z = zeros ? (float)zeros[f] : 8.0f;
                const gmv_u32 q = *(const gmv_u32*)(codes + r * row_bytes + 16 * i + 4 * sub);
#pragma unroll
                for (int k = 0; k < 4; ++k) {
                    lo[j][k] = (float)((q >> (8 * k)) & 0xF) - z;
                    hi[j][k] = (float)((q >> (8 * k + 4)) & 0xF) - z;
                }
            }
#pragma unroll
            for (int v = 0; v < NV; ++v) {
                if (v < nv) {
                    float xl[4], xh[4];
                    gmv_x4(xv + (gmv_u64)v * cols + 32 * i + 4 * sub, xa, xl);
                    gmv_x4(xv + (gmv_u64)v * cols + 32 * i + 16 + 4 * sub, xa, xh);
#pragma unroll
                    for (int j = 0; j < R; ++j) {
                        float s = 0.0f;
#pragma unroll
                        for (int k = 0; k < 4; ++k) s = fmaf(lo[j][k], xl[k], fmaf(hi[j][k], xh[k], s));
                        acc[j][v] = fmaf(d[j], s, acc[j][v]);
                    }
                }
            }
        }
#pragma unroll
        for (int j = 0; j < R; ++j)
#pragma unroll
            for (int v = 0; v < NV; ++v) {
                const float s = gmv_warp_sum(acc[j][v]);
                if (lane == 0 && v < nv && j < nr) y[(gmv_u64)(v0 + v) * rows + row0 + j] = s;
            }
    }
}

template <class S, int R>
__device__ __forceinline__ void gmv_int4(const gmv_u8* __restrict__ codes, const S* __restrict__ scales,
                                         const gmv_u8* __restrict__ zeros, const float* __restrict__ x,
                                         float* __restrict__ y, int rows, int cols, int group,
                                         int n_vec) {
    const int row0 = (blockIdx.x * blockDim.y + threadIdx.y) * R;
    if (row0 >= rows) return;  // the whole warp leaves together: no shuffle is left waiting
    const int nr = min(R, rows - row0);
    const bool xa = ((gmv_u64)x & 15) == 0;  // then every block's columns are 16-byte aligned too
    if (n_vec == 1)
        gmv_int4_rows<S, R, 1>(codes, scales, zeros, x, y, row0, nr, rows, cols, group, n_vec,
                               threadIdx.x, xa);
    else
        gmv_int4_rows<S, R, GMV_MAX_VEC>(codes, scales, zeros, x, y, row0, nr, rows, cols, group, n_vec,
                                         threadIdx.x, xa);
}

// ---- int8: one row, NV vectors at a time (any cols: byte loads, a bound check per code) ---------
template <class S, int NV>
__device__ __forceinline__ void gmv_int8_row(const signed char* __restrict__ qr, const S* __restrict__ sr,
                                             const float* __restrict__ x, float* __restrict__ y, int row,
                                             int rows, int cols, int group, int n_vec, int lane) {
    for (int v0 = 0; v0 < n_vec; v0 += NV) {
        const int nv = min(NV, n_vec - v0);
        float acc[NV];
#pragma unroll
        for (int v = 0; v < NV; ++v) acc[v] = 0.0f;
        const float* xv = x + (gmv_u64)v0 * cols;
        for (int c0 = 4 * lane; c0 < cols; c0 += 128) {
#pragma unroll
            for (int k = 0; k < 4; ++k) {
                const int c = c0 + k;
                if (c < cols) {
                    const float w = (float)qr[c] * gmv_scale(sr, c / group);
#pragma unroll
                    for (int v = 0; v < NV; ++v)
                        if (v < nv) acc[v] = fmaf(w, xv[(gmv_u64)v * cols + c], acc[v]);
                }
            }
        }
#pragma unroll
        for (int v = 0; v < NV; ++v) {
            const float s = gmv_warp_sum(acc[v]);
            if (lane == 0 && v < nv) y[(gmv_u64)(v0 + v) * rows + row] = s;
        }
    }
}

template <class S>
__device__ __forceinline__ void gmv_int8(const signed char* __restrict__ codes, const S* __restrict__ scales,
                                         const float* __restrict__ x, float* __restrict__ y, int rows,
                                         int cols, int group, int n_vec) {
    const int row = blockIdx.x * blockDim.y + threadIdx.y;
    if (row >= rows) return;
    const signed char* qr = codes + (gmv_u64)row * cols;
    const S* sr = scales + (gmv_u64)row * (cols / group);
    if (n_vec == 1)
        gmv_int8_row<S, 1>(qr, sr, x, y, row, rows, cols, group, n_vec, threadIdx.x);
    else
        gmv_int8_row<S, GMV_MAX_VEC>(qr, sr, x, y, row, rows, cols, group, n_vec, threadIdx.x);
}

// ---- dequantizing (grid-stride; one code byte a step) -------------------------------------------
template <class S>
__device__ __forceinline__ void gdq_int4(const gmv_u8* __restrict__ codes, const S* __restrict__ scales,
                                         const gmv_u8* __restrict__ zeros, float* __restrict__ w, int rows,
                                         int cols, int group) {
    const gmv_u64 half = cols / 2, n = (gmv_u64)rows * half;
    const int groups = cols / group;
    for (gmv_u64 t = blockIdx.x * (gmv_u64)blockDim.x + threadIdx.x; t < n;
         t += (gmv_u64)gridDim.x * blockDim.x) {
        const gmv_u64 row = t / half;
        const int j = (int)(t % half);
        const int c = 32 * (j / 16) + j % 16;  // the low nibble's column; the high one's is c + 16
        const gmv_u64 g = row * groups + c / group;
        const float d = gmv_scale(scales, g);
        const float z = zeros ? (float)zeros[g] : 8.0f;
        const gmv_u8 b = codes[t];
        w[row * cols + c] = ((float)(b & 0xF) - z) * d;
        w[row * cols + c + 16] = ((float)(b >> 4) - z) * d;
    }
}

template <class S>
__device__ __forceinline__ void gdq_int8(const signed char* __restrict__ codes, const S* __restrict__ scales,
                                         float* __restrict__ w, int rows, int cols, int group) {
    const gmv_u64 n = (gmv_u64)rows * cols;
    const int groups = cols / group;
    for (gmv_u64 t = blockIdx.x * (gmv_u64)blockDim.x + threadIdx.x; t < n;
         t += (gmv_u64)gridDim.x * blockDim.x) {
        const gmv_u64 row = t / cols;
        const int c = (int)(t % cols);
        w[t] = (float)codes[t] * gmv_scale(scales, row * groups + c / group);
    }
}

// The int4 kernels, without and with zero points, R output rows a warp: a kernel of its own
// for each R (one kernel holding both would take the registers of R = 4 for both, and fewer
// warps would fit where one row a warp needs many in flight).
#define GMV_DEFINE_INT4(NAME, NAME_ZP, S, R)                                                           \
    extern "C" __global__ void NAME(const unsigned char* __restrict__ codes, const S* __restrict__ scales, \
                                    const float* __restrict__ x, float* __restrict__ y, int rows,        \
                                    int cols, int group, int n_vec) {                                    \
        gmv_int4<S, R>(codes, scales, 0, x, y, rows, cols, group, n_vec);                               \
    }                                                                                                    \
    extern "C" __global__ void NAME_ZP(const unsigned char* __restrict__ codes,                         \
                                       const S* __restrict__ scales,                                     \
                                       const unsigned char* __restrict__ zeros,                          \
                                       const float* __restrict__ x, float* __restrict__ y, int rows,     \
                                       int cols, int group, int n_vec) {                                 \
        gmv_int4<S, R>(codes, scales, zeros, x, y, rows, cols, group, n_vec);                           \
    }

#define GMV_DEFINE(SFX, S)                                                                              \
    GMV_DEFINE_INT4(gmv_int4_##SFX, gmv_int4_zp_##SFX, S, 1)                                            \
    GMV_DEFINE_INT4(gmv_int4_x4_##SFX, gmv_int4_zp_x4_##SFX, S, 4)                                      \
    extern "C" __global__ void gmv_int8_##SFX(const signed char* __restrict__ codes,                    \
                                              const S* __restrict__ scales, const float* __restrict__ x, \
                                              float* __restrict__ y, int rows, int cols, int group,      \
                                              int n_vec) {                                               \
        gmv_int8<S>(codes, scales, x, y, rows, cols, group, n_vec);                                     \
    }                                                                                                    \
    extern "C" __global__ void gdq_int4_##SFX(const unsigned char* __restrict__ codes,                  \
                                              const S* __restrict__ scales, float* __restrict__ w,       \
                                              int rows, int cols, int group) {                           \
        gdq_int4<S>(codes, scales, 0, w, rows, cols, group);                                            \
    }                                                                                                    \
    extern "C" __global__ void gdq_int4_zp_##SFX(const unsigned char* __restrict__ codes,               \
                                                 const S* __restrict__ scales,                           \
                                                 const unsigned char* __restrict__ zeros,                \
                                                 float* __restrict__ w, int rows, int cols, int group) { \
        gdq_int4<S>(codes, scales, zeros, w, rows, cols, group);                                        \
    }                                                                                                    \
    extern "C" __global__ void gdq_int8_##SFX(const signed char* __restrict__ codes,                    \
                                              const S* __restrict__ scales, float* __restrict__ w,       \
                                              int rows, int cols, int group) {                           \
        gdq_int8<S>(codes, scales, w, rows, cols, group);                                               \
    }

GMV_DEFINE(f16, __half)
GMV_DEFINE(f32, float)
