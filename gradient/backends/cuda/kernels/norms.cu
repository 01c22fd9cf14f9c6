// LayerNorm and RMSNorm over the last dimension of a (rows, cols) array, forward and backward.
//
// Kernels (one per storage dtype T: _f32 float, _f16 __half, _bf16 __nv_bfloat16):
//
//   layer_norm_forward_f32 / _f16 / _bf16(
//       const T* x,         // (rows, cols)
//       const T* weight,    // (cols,) or NULL (no scale)
//       const T* bias,      // (cols,) or NULL (no shift)
//       T*       y,         // (rows, cols)
//       float*   mean,      // (rows,) float32: the row means
//       float*   rstd,      // (rows,) float32: 1 / sqrt(var + eps), var the biased variance
//       long long rows, long long cols, float eps)
//     y = (x - mean) * rstd * weight + bias
//
//   layer_norm_backward_f32 / _f16 / _bf16(
//       const T* grad,      // (rows, cols): dL/dy
//       const T* x,         // (rows, cols): the forward's input
//       const T* weight,    // (cols,) or NULL
//       const float* mean, const float* rstd,   // (rows,): what the forward wrote
//       T*       dx,        // (rows, cols)
//       float*   dweight,   // (cols,) float32 ZEROED by the caller, or NULL: += sum_rows grad*xhat
//       float*   dbias,     // (cols,) float32, ZEROED by the caller, or NULL: += sum_rows grad
//       long long rows, long long cols)
//     xhat = (x - mean) * rstd, gw = grad * weight,
//     dx = rstd * (gw - mean_cols(gw) - xhat * mean_cols(gw * xhat))
//
//   rms_norm_forward_f32 / _f16 / _bf16(
//       const T* x, const T* weight /* (cols,) or NULL */, T* y,
//       float* rstd,        // (rows,) float32: 1 / sqrt(mean(x^2) + eps)
//       long long rows, long long cols, float eps)
//     y = x * rstd * weight                      (rounded to T once, after the multiplication)
//
//   rms_norm_backward_f32 / _f16 / _bf16(
//       const T* grad, const T* x, const T* weight /* or NULL */, const float* rstd,
//       T* dx,
//       float* dweight,     // (cols,) float32 ZEROED by the caller, or NULL:
//                           //   += sum_rows grad * x * rstd
//       long long rows, long long cols)
//     xhat = x * rstd, gw = grad * weight, dx = rstd * (gw - xhat * mean_cols(gw * xhat))
//
//   All arrays contiguous; cols < 2^31. Statistics and math in float32 (two passes over the row
//   for the variance: no cancellation), results rounded once to T. In place is allowed for
//   y == x and dx == grad.
//
// Launch configuration (all four):
//   grid  = (G, 1, 1)       blocks loop over rows (row = blockIdx.x, += gridDim.x). G = rows is
//                           correct; for the backward a smaller G (e.g. min(rows, 4 * number of
//                           SMs)) means fewer atomics on dweight/dbias (see below).
//   block = (B, 1, 1)       B a multiple of 32, 32 <= B <= 1024,
//                           e.g. min(1024, cols rounded up to 32)
//   shared memory: static only; pass 0 bytes of dynamic shared memory.
//
// How the backward sums dweight/dbias: a thread owns the same columns (threadIdx.x + k * B) in
// every row its block visits, so it keeps its partial sums of the first NORM_PARTIALS columns
// in registers over all those rows and adds them to the float32 buffers once, with atomicAdd,
// at the end: G * cols atomics in all. Columns past NORM_PARTIALS * B (very wide rows) are added
// with one atomicAdd per element. The order of the float32 sums depends on the schedule, so
// dweight/dbias are not bitwise reproducible from run to run (dx is).

#include <cuda_fp16.h>
#include <cuda_bf16.h>

#define NORM_FULL_MASK 0xffffffffu
#define NORM_PARTIALS 8

__device__ __forceinline__ float nm_load(const float* p) { return *p; }
__device__ __forceinline__ float nm_load(const __half* p) { return __half2float(*p); }
__device__ __forceinline__ float nm_load(const __nv_bfloat16* p) { return __bfloat162float(*p); }

__device__ __forceinline__ void nm_store(float* p, float v) { *p = v; }
__device__ __forceinline__ void nm_store(__half* p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void nm_store(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

// Sum over the block: every thread passes its partial and gets the total. shared: 33 floats.
// The first __syncthreads makes back-to-back calls safe (see softmax.cu).
__device__ __forceinline__ float nm_block_sum(float v, float* shared) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int warps = (blockDim.x + 31) >> 5;
#pragma unroll
    for (int off = 16; off >= 1; off >>= 1) v += __shfl_xor_sync(NORM_FULL_MASK, v, off);
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < warps ? shared[lane] : 0.0f;
#pragma unroll
        for (int off = 16; off >= 1; off >>= 1) v += __shfl_xor_sync(NORM_FULL_MASK, v, off);
        if (lane == 0) shared[32] = v;
    }
    __syncthreads();
    return shared[32];
}

// Two block sums at once (one pass of shuffles per value, one trip through shared memory).
__device__ __forceinline__ float2 nm_block_sum2(float a, float b, float* shared) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int warps = (blockDim.x + 31) >> 5;
#pragma unroll
    for (int off = 16; off >= 1; off >>= 1) {
        a += __shfl_xor_sync(NORM_FULL_MASK, a, off);
        b += __shfl_xor_sync(NORM_FULL_MASK, b, off);
    }
    __syncthreads();
    if (lane == 0) {
        shared[warp] = a;
        shared[33 + warp] = b;
    }
    __syncthreads();
    if (warp == 0) {
        a = lane < warps ? shared[lane] : 0.0f;
        b = lane < warps ? shared[33 + lane] : 0.0f;
#pragma unroll
        for (int off = 16; off >= 1; off >>= 1) {
            a += __shfl_xor_sync(NORM_FULL_MASK, a, off);
            b += __shfl_xor_sync(NORM_FULL_MASK, b, off);
        }
        if (lane == 0) {
            shared[32] = a;
            shared[65] = b;
        }
    }
    __syncthreads();
    return make_float2(shared[32], shared[65]);
}

// ------------------------------------------------------------------------------ LayerNorm
template <typename T>
__device__ __forceinline__ void layer_norm_forward_rows(const T* x, const T* weight, const T* bias,
                                                        T* y, float* mean, float* rstd,
                                                        long long rows, long long cols, float eps) {
    __shared__ float shared[33];
    const int n = (int)cols;
    for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
        const T* xr = x + row * cols;
        T* yr = y + row * cols;
        float s = 0.0f;
        for (int j = threadIdx.x; j < n; j += blockDim.x) s += nm_load(xr + j);
        const float mu = nm_block_sum(s, shared) / (float)n;
        float s2 = 0.0f;
        for (int j = threadIdx.x; j < n; j += blockDim.x) {
            const float d = nm_load(xr + j) - mu;
            s2 += d * d;
        }
        const float inv = 1.0f / sqrtf(nm_block_sum(s2, shared) / (float)n + eps);
        if (threadIdx.x == 0) {
            mean[row] = mu;
            rstd[row] = inv;
        }
        for (int j = threadIdx.x; j < n; j += blockDim.x) {
            float v = (nm_load(xr + j) - mu) * inv;
            if (weight) v *= nm_load(weight + j);
            if (bias) v += nm_load(bias + j);
            nm_store(yr + j, v);
        }
    }
}

template <typename T>
__device__ __forceinline__ void layer_norm_backward_rows(const T* grad, const T* x, const T* weight,
                                                         const float* mean, const float* rstd,
                                                         T* dx, float* dweight, float* dbias,
                                                         long long rows, long long cols) {
    __shared__ float shared[66];
    const int n = (int)cols;
    float pw[NORM_PARTIALS], pb[NORM_PARTIALS];
#pragma unroll
    for (int k = 0; k < NORM_PARTIALS; ++k) pw[k] = pb[k] = 0.0f;
    const int owned = NORM_PARTIALS * blockDim.x;  // columns below this are summed in registers

    for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
        const T* gr = grad + row * cols;
        const T* xr = x + row * cols;
        T* dr = dx + row * cols;
        const float mu = mean[row], inv = rstd[row];
        float a = 0.0f, b = 0.0f;
        for (int j = threadIdx.x; j < n; j += blockDim.x) {
            const float xhat = (nm_load(xr + j) - mu) * inv;
            const float gw = weight ? nm_load(gr + j) * nm_load(weight + j) : nm_load(gr + j);
            a += gw;
            b += gw * xhat;
        }
        const float2 sums = nm_block_sum2(a, b, shared);
        const float a_mean = sums.x / (float)n, b_mean = sums.y / (float)n;
#pragma unroll
        for (int k = 0; k < NORM_PARTIALS; ++k) {
            const int j = threadIdx.x + k * blockDim.x;
            if (j < n) {
                const float g = nm_load(gr + j);
                const float xhat = (nm_load(xr + j) - mu) * inv;
                const float gw = weight ? g * nm_load(weight + j) : g;
                nm_store(dr + j, inv * (gw - a_mean - xhat * b_mean));
                pw[k] += g * xhat;
                pb[k] += g;
            }
        }
        for (int j = threadIdx.x + owned; j < n; j += blockDim.x) {
            const float g = nm_load(gr + j);
            const float xhat = (nm_load(xr + j) - mu) * inv;
            const float gw = weight ? g * nm_load(weight + j) : g;
            nm_store(dr + j, inv * (gw - a_mean - xhat * b_mean));
            if (dweight) atomicAdd(dweight + j, g * xhat);
            if (dbias) atomicAdd(dbias + j, g);
        }
    }
    if (blockIdx.x >= rows) return;  // this block saw no row: nothing to add
#pragma unroll
    for (int k = 0; k < NORM_PARTIALS; ++k) {
        const int j = threadIdx.x + k * blockDim.x;
        if (j < n) {
            if (dweight) atomicAdd(dweight + j, pw[k]);
            if (dbias) atomicAdd(dbias + j, pb[k]);
        }
    }
}

// ------------------------------------------------------------------------------ RMSNorm
template <typename T>
__device__ __forceinline__ void rms_norm_forward_rows(const T* x, const T* weight, T* y,
                                                      float* rstd, long long rows, long long cols,
                                                      float eps) {
    __shared__ float shared[33];
    const int n = (int)cols;
    for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
        const T* xr = x + row * cols;
        T* yr = y + row * cols;
        float s = 0.0f;
        for (int j = threadIdx.x; j < n; j += blockDim.x) {
            const float v = nm_load(xr + j);
            s += v * v;
        }
        const float inv = 1.0f / sqrtf(nm_block_sum(s, shared) / (float)n + eps);
        if (threadIdx.x == 0) rstd[row] = inv;
        for (int j = threadIdx.x; j < n; j += blockDim.x) {
            float v = nm_load(xr + j) * inv;
            if (weight) v *= nm_load(weight + j);
            nm_store(yr + j, v);
        }
    }
}

template <typename T>
__device__ __forceinline__ void rms_norm_backward_rows(const T* grad, const T* x, const T* weight,
                                                       const float* rstd, T* dx, float* dweight,
                                                       long long rows, long long cols) {
    __shared__ float shared[33];
    const int n = (int)cols;
    float pw[NORM_PARTIALS];
#pragma unroll
    for (int k = 0; k < NORM_PARTIALS; ++k) pw[k] = 0.0f;
    const int owned = NORM_PARTIALS * blockDim.x;

    for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
        const T* gr = grad + row * cols;
        const T* xr = x + row * cols;
        T* dr = dx + row * cols;
        const float inv = rstd[row];
        float b = 0.0f;
        for (int j = threadIdx.x; j < n; j += blockDim.x) {
            const float gw = weight ? nm_load(gr + j) * nm_load(weight + j) : nm_load(gr + j);
            b += gw * nm_load(xr + j) * inv;
        }
        const float b_mean = nm_block_sum(b, shared) / (float)n;
#pragma unroll
        for (int k = 0; k < NORM_PARTIALS; ++k) {
            const int j = threadIdx.x + k * blockDim.x;
            if (j < n) {
                const float g = nm_load(gr + j);
                const float xhat = nm_load(xr + j) * inv;
                const float gw = weight ? g * nm_load(weight + j) : g;
                nm_store(dr + j, inv * (gw - xhat * b_mean));
                pw[k] += g * xhat;
            }
        }
        for (int j = threadIdx.x + owned; j < n; j += blockDim.x) {
            const float g = nm_load(gr + j);
            const float xhat = nm_load(xr + j) * inv;
            const float gw = weight ? g * nm_load(weight + j) : g;
            nm_store(dr + j, inv * (gw - xhat * b_mean));
            if (dweight) atomicAdd(dweight + j, g * xhat);
        }
    }
    if (blockIdx.x >= rows || !dweight) return;
#pragma unroll
    for (int k = 0; k < NORM_PARTIALS; ++k) {
        const int j = threadIdx.x + k * blockDim.x;
        if (j < n) atomicAdd(dweight + j, pw[k]);
    }
}

#define NORM_KERNELS(T, S)                                                                         \
    extern "C" __global__ void __launch_bounds__(1024) layer_norm_forward_##S(                     \
        const T* x, const T* weight, const T* bias, T* y, float* mean, float* rstd,                \
        long long rows, long long cols, float eps) {                                               \
        layer_norm_forward_rows<T>(x, weight, bias, y, mean, rstd, rows, cols, eps);               \
    }                                                                                              \
    extern "C" __global__ void __launch_bounds__(1024) layer_norm_backward_##S(                    \
        const T* grad, const T* x, const T* weight, const float* mean, const float* rstd,          \
        T* dx, float* dweight, float* dbias, long long rows, long long cols) {                     \
        layer_norm_backward_rows<T>(grad, x, weight, mean, rstd, dx, dweight, dbias, rows,         \
                                    cols);                                                         \
    }                                                                                              \
    extern "C" __global__ void __launch_bounds__(1024) rms_norm_forward_##S(                       \
        const T* x, const T* weight, T* y, float* rstd, long long rows, long long cols,            \
        float eps) {                                                                               \
        rms_norm_forward_rows<T>(x, weight, y, rstd, rows, cols, eps);                             \
    }                                                                                              \
    extern "C" __global__ void __launch_bounds__(1024) rms_norm_backward_##S(                      \
        const T* grad, const T* x, const T* weight, const float* rstd, T* dx, float* dweight,      \
        long long rows, long long cols) {                                                          \
        rms_norm_backward_rows<T>(grad, x, weight, rstd, dx, dweight, rows, cols);                 \
    }

NORM_KERNELS(float, f32)
NORM_KERNELS(__half, f16)
NORM_KERNELS(__nv_bfloat16, bf16)
