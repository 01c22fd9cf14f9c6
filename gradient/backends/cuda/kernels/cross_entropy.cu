// Cross-entropy of logits (rows, classes) against int64 class targets, with ignore_index and
// label smoothing: a forward that saves each row's log-sum-exp, and a backward that reuses it.
//
// Kernels (one per storage dtype T of the logits: _f32 float, _f16 __half, _bf16 __nv_bfloat16):
//
//   cross_entropy_forward_f32 / _f16 / _bf16(
//       const T*         logits,     // (rows, classes), contiguous
//       const long long* targets,    // (rows,) int64 class indices
//       float*           loss,       // (rows,) float32: the loss of each row (0 where ignored)
//       float*           lse,        // (rows,) float32: log(sum(exp(logits))) of each row, for
//                                    //          the backward (written for ignored rows too)
//       long long rows, long long classes,
//       long long ignore_index,      // rows whose target equals it get loss 0 (PyTorch: -100)
//       float label_smoothing)       // eps in [0, 1]; 0 for plain cross-entropy
//     loss[r] = (1 - eps) * (lse - logits[r, t]) + eps * (lse - mean(logits[r, :]))
//     with t = targets[r]
//     (PyTorch's cross_entropy with reduction="none"; reduce on the host or with a sum kernel:
//     "mean" divides the sum by the number of rows that are not ignored.)
//     A target outside [0, classes) that is not ignore_index gives loss NaN: the caller should
//     check targets beforehand to raise a readable error, as PyTorch does.
//
//   cross_entropy_backward_f32 / _f16 / _bf16(
//       const T*         logits,     // (rows, classes): the forward's input
//       const long long* targets,    // (rows,)
//       const float*     lse,        // (rows,): what the forward wrote
//       const float*     scale,      // (rows,) float32: dL/dloss[r], or NULL for all ones.
//                                    //   reduction "mean": grad_output / (non-ignored rows);
//                                    //   "sum": grad_output; "none": grad_output[r]
//       T*               dlogits,    // (rows, classes); dlogits == logits (in place) is allowed
//       long long rows, long long classes, long long ignore_index, float label_smoothing)
//     dlogits[r, j] = scale[r] * (exp(logits[r, j] - lse[r]) - (1 - eps) * [j == t]
//                                 - eps / classes)
//     and 0 for ignored rows (NaN for invalid targets, like the loss).
//
//   Why two kernels rather than the gradient in the forward pass: the upstream gradient (and so
//   the scale) is known only in the backward, and autograd may not ask for the gradient at all
//   (evaluation). Saving one float per row costs nothing; the backward then reads the logits
//   once and writes the gradient once, without recomputing the row maximum and sum.
//
//   Math in float32: exp(x - max) summed per row; lse = max + log(sum). classes < 2^31.
//
// Launch configuration (both):
//   grid  = (min(rows, 2^31 - 1), 1, 1)   one block per row (blocks loop over rows by gridDim.x)
//   block = (B, 1, 1)                      B a multiple of 32, 32 <= B <= 1024, e.g.
//                                          min(1024, classes rounded up to 32)
//   shared memory: static only; pass 0 bytes of dynamic shared memory.

#include <cuda_fp16.h>
#include <cuda_bf16.h>

#define CE_FULL_MASK 0xffffffffu

__device__ __forceinline__ float ce_load(const float* p) { return *p; }
__device__ __forceinline__ float ce_load(const __half* p) { return __half2float(*p); }
__device__ __forceinline__ float ce_load(const __nv_bfloat16* p) { return __bfloat162float(*p); }

__device__ __forceinline__ void ce_store(float* p, float v) { *p = v; }
__device__ __forceinline__ void ce_store(__half* p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void ce_store(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

__device__ __forceinline__ float ce_neg_inf() { return __int_as_float(0xff800000); }
__device__ __forceinline__ float ce_nan() { return __int_as_float(0x7fc00000); }

// Block-wide max or sum; every thread gets the result. shared: 33 floats; back-to-back calls
// are safe (the first __syncthreads waits until everyone has read the previous result).
template <bool MAX>
__device__ __forceinline__ float ce_block_reduce(float v, float* shared) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int warps = (blockDim.x + 31) >> 5;
#pragma unroll
    for (int off = 16; off >= 1; off >>= 1) {
        const float other = __shfl_xor_sync(CE_FULL_MASK, v, off);
        v = MAX ? fmaxf(v, other) : v + other;
    }
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < warps ? shared[lane] : (MAX ? ce_neg_inf() : 0.0f);
#pragma unroll
        for (int off = 16; off >= 1; off >>= 1) {
            const float other = __shfl_xor_sync(CE_FULL_MASK, v, off);
            v = MAX ? fmaxf(v, other) : v + other;
        }
        if (lane == 0) shared[32] = v;
    }
    __syncthreads();
    return shared[32];
}

template <typename T>
__device__ __forceinline__ void cross_entropy_forward_rows(
    const T* logits, const long long* targets, float* loss, float* lse, long long rows,
    long long classes, long long ignore_index, float label_smoothing) {
    __shared__ float shared[33];
    const int n = (int)classes;
    for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
        const T* xr = logits + row * classes;
        float m = ce_neg_inf();
        for (int j = threadIdx.x; j < n; j += blockDim.x) m = fmaxf(m, ce_load(xr + j));
        m = ce_block_reduce<true>(m, shared);
        float s = 0.0f;
        for (int j = threadIdx.x; j < n; j += blockDim.x) s += expf(ce_load(xr + j) - m);
        const float row_lse = m + logf(ce_block_reduce<false>(s, shared));
        float total = 0.0f;  // sum of the logits, for label smoothing only
        if (label_smoothing != 0.0f) {
            for (int j = threadIdx.x; j < n; j += blockDim.x) total += ce_load(xr + j);
            total = ce_block_reduce<false>(total, shared);
        }
        if (threadIdx.x == 0) {
            const long long t = targets[row];
            float value;
            if (t == ignore_index) {
                value = 0.0f;
            } else if (t < 0 || t >= classes) {
                value = ce_nan();
            } else {
                value = (1.0f - label_smoothing) * (row_lse - ce_load(xr + t));
                if (label_smoothing != 0.0f)
                    value += label_smoothing * (row_lse - total / (float)n);
            }
            loss[row] = value;
            lse[row] = row_lse;
        }
    }
}

template <typename T>
__device__ __forceinline__ void cross_entropy_backward_rows(
    const T* logits, const long long* targets, const float* lse, const float* scale, T* dlogits,
    long long rows, long long classes, long long ignore_index, float label_smoothing) {
    const int n = (int)classes;
    const float smooth = label_smoothing / (float)n;
    const float hit = 1.0f - label_smoothing;
    for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
        const T* xr = logits + row * classes;
        T* dr = dlogits + row * classes;
        const long long t = targets[row];
        if (t == ignore_index) {
            for (int j = threadIdx.x; j < n; j += blockDim.x) ce_store(dr + j, 0.0f);
            continue;
        }
        const float k = (t < 0 || t >= classes) ? ce_nan() : (scale ? scale[row] : 1.0f);
        const float row_lse = lse[row];
        for (int j = threadIdx.x; j < n; j += blockDim.x) {
            const float p = expf(ce_load(xr + j) - row_lse);
            ce_store(dr + j, k * (p - (j == t ? hit : 0.0f) - smooth));
        }
    }
}

#define CROSS_ENTROPY_KERNELS(T, S)                                                                \
    extern "C" __global__ void __launch_bounds__(1024) cross_entropy_forward_##S(                  \
        const T* logits, const long long* targets, float* loss, float* lse, long long rows,        \
        long long classes, long long ignore_index, float label_smoothing) {                        \
        cross_entropy_forward_rows<T>(logits, targets, loss, lse, rows, classes, ignore_index,     \
                                      label_smoothing);                                            \
    }                                                                                              \
    extern "C" __global__ void __launch_bounds__(1024) cross_entropy_backward_##S(                 \
        const T* logits, const long long* targets, const float* lse, const float* scale,           \
        T* dlogits, long long rows, long long classes, long long ignore_index,                     \
        float label_smoothing) {                                                                   \
        cross_entropy_backward_rows<T>(logits, targets, lse, scale, dlogits, rows, classes,        \
                                       ignore_index, label_smoothing);                             \
    }

CROSS_ENTROPY_KERNELS(float, f32)
CROSS_ENTROPY_KERNELS(__half, f16)
CROSS_ENTROPY_KERNELS(__nv_bfloat16, bf16)
