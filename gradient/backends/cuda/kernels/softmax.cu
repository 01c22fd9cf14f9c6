// Softmax and log-softmax over the last dimension of a (rows, cols) array, forward and backward.
//
// Kernels (one per storage dtype T: _f32 float, _f16 __half, _bf16 __nv_bfloat16):
//
//   softmax_forward_f32 / _f16 / _bf16(const T* x, T* y, long long rows, long long cols)
//       y = exp(x - max(x)) / sum(exp(x - max(x)))                       per row
//   log_softmax_forward_f32 / _f16 / _bf16(const T* x, T* y, long long rows, long long cols)
//       y = x - max(x) - log(sum(exp(x - max(x))))                       per row
//   softmax_backward_f32 / _f16 / _bf16(const T* grad, const T* y, T* dx,
//                                       long long rows, long long cols)
//       dx = y * (grad - sum(grad * y))                                  y: the softmax output
//   log_softmax_backward_f32 / _f16 / _bf16(const T* grad, const T* y, T* dx,
//                                           long long rows, long long cols)
//       dx = grad - exp(y) * sum(grad)                                   y: the log-softmax output
//
//   All arrays contiguous, row-major, of rows * cols elements; cols < 2^31. Math and sums in
//   float32, results rounded once to T. In place is allowed (y == x, dx == grad or dx == y):
//   every thread reads an element before it writes the same element. A row of -inf gives NaN
//   (as in PyTorch).
//
// Launch configuration:
//   grid  = (min(rows, 2^31 - 1), 1, 1)   one block per row (blocks loop over rows by gridDim.x,
//                                          so a smaller grid is also correct)
//   block = (B, 1, 1)                      B a multiple of 32, 32 <= B <= 1024; e.g.
//                                          min(1024, cols rounded up to 32) (at least 128 is good)
//   shared memory: static only; pass 0 bytes of dynamic shared memory.
//
// How: the block strides over the row (coalesced), and reduces with warp shuffles, then one
// partial per warp through shared memory. The forward reads the row three times (max, sum,
// write); a row of a few thousand elements stays in L1/L2 between the passes.

#include <cuda_fp16.h>
#include <cuda_bf16.h>

#define SM_FULL_MASK 0xffffffffu

__device__ __forceinline__ float sm_load(const float* p) { return *p; }
__device__ __forceinline__ float sm_load(const __half* p) { return __half2float(*p); }
__device__ __forceinline__ float sm_load(const __nv_bfloat16* p) { return __bfloat162float(*p); }

__device__ __forceinline__ void sm_store(float* p, float v) { *p = v; }
__device__ __forceinline__ void sm_store(__half* p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void sm_store(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

__device__ __forceinline__ float sm_neg_inf() { return __int_as_float(0xff800000); }

// Block-wide reductions: every thread passes its partial and gets the block's result.
// shared: 33 floats (one per warp, and the result). The first __syncthreads lets the block
// call these back to back: nobody overwrites shared before everyone has read the last result.
template <bool MAX>
__device__ __forceinline__ float sm_block_reduce(float v, float* shared) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int warps = (blockDim.x + 31) >> 5;
#pragma unroll
    for (int off = 16; off >= 1; off >>= 1) {
        const float other = __shfl_xor_sync(SM_FULL_MASK, v, off);
        v = MAX ? fmaxf(v, other) : v + other;
    }
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < warps ? shared[lane] : (MAX ? sm_neg_inf() : 0.0f);
#pragma unroll
        for (int off = 16; off >= 1; off >>= 1) {
            const float other = __shfl_xor_sync(SM_FULL_MASK, v, off);
            v = MAX ? fmaxf(v, other) : v + other;
        }
        if (lane == 0) shared[32] = v;
    }
    __syncthreads();
    return shared[32];
}

template <typename T, bool LOG>
__device__ __forceinline__ void softmax_forward_rows(const T* x, T* y, long long rows,
                                                     long long cols) {
    __shared__ float shared[33];
    const int n = (int)cols;
    for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
        const T* xr = x + row * cols;
        T* yr = y + row * cols;
        float m = sm_neg_inf();
        for (int j = threadIdx.x; j < n; j += blockDim.x) m = fmaxf(m, sm_load(xr + j));
        m = sm_block_reduce<true>(m, shared);
        float s = 0.0f;
        for (int j = threadIdx.x; j < n; j += blockDim.x) s += expf(sm_load(xr + j) - m);
        s = sm_block_reduce<false>(s, shared);
        if (LOG) {
            const float lse = logf(s);
            for (int j = threadIdx.x; j < n; j += blockDim.x)
                sm_store(yr + j, sm_load(xr + j) - m - lse);
        } else {
            for (int j = threadIdx.x; j < n; j += blockDim.x)
                sm_store(yr + j, expf(sm_load(xr + j) - m) / s);
        }
    }
}

template <typename T, bool LOG>
__device__ __forceinline__ void softmax_backward_rows(const T* grad, const T* y, T* dx,
                                                      long long rows, long long cols) {
    __shared__ float shared[33];
    const int n = (int)cols;
    for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
        const T* gr = grad + row * cols;
        const T* yr = y + row * cols;
        T* dr = dx + row * cols;
        float s = 0.0f;  // sum(grad * y) for softmax, sum(grad) for log-softmax
        for (int j = threadIdx.x; j < n; j += blockDim.x)
            s += LOG ? sm_load(gr + j) : sm_load(gr + j) * sm_load(yr + j);
        s = sm_block_reduce<false>(s, shared);
        for (int j = threadIdx.x; j < n; j += blockDim.x) {
            const float g = sm_load(gr + j), v = sm_load(yr + j);
            sm_store(dr + j, LOG ? g - expf(v) * s : v * (g - s));
        }
    }
}

#define SOFTMAX_KERNELS(T, S)                                                                      \
    extern "C" __global__ void __launch_bounds__(1024) softmax_forward_##S(                        \
        const T* x, T* y, long long rows, long long cols) {                                        \
        softmax_forward_rows<T, false>(x, y, rows, cols);                                          \
    }                                                                                              \
    extern "C" __global__ void __launch_bounds__(1024) log_softmax_forward_##S(                    \
        const T* x, T* y, long long rows, long long cols) {                                        \
        softmax_forward_rows<T, true>(x, y, rows, cols);                                           \
    }                                                                                              \
    extern "C" __global__ void __launch_bounds__(1024) softmax_backward_##S(                       \
        const T* grad, const T* y, T* dx, long long rows, long long cols) {                        \
        softmax_backward_rows<T, false>(grad, y, dx, rows, cols);                                  \
    }                                                                                              \
    extern "C" __global__ void __launch_bounds__(1024) log_softmax_backward_##S(                   \
        const T* grad, const T* y, T* dx, long long rows, long long cols) {                        \
        softmax_backward_rows<T, true>(grad, y, dx, rows, cols);                                   \
    }

SOFTMAX_KERNELS(float, f32)
SOFTMAX_KERNELS(__half, f16)
SOFTMAX_KERNELS(__nv_bfloat16, bf16)
