// GELU, exact (erf) and tanh-approximated, forward and backward.
//
// Kernels (one per storage dtype T: _f32 float, _f16 __half, _bf16 __nv_bfloat16):
//
//   gelu_forward_f32 / _f16 / _bf16(const T* x, T* y, long long n, int approximate)
//   gelu_backward_f32 / _f16 / _bf16(const T* grad, const T* x, T* dx, long long n,
//                                    int approximate)
//
//   approximate = 0 (PyTorch's approximate="none"):
//       y  = 0.5 * x * (1 + erf(x / sqrt(2)))
//       dx = grad * (0.5 * (1 + erf(x / sqrt(2))) + x * exp(-x^2 / 2) / sqrt(2 * pi))
//   approximate = 1 (approximate="tanh", GPT-2's "gelu_new"):
//       t  = tanh(sqrt(2 / pi) * (x + 0.044715 * x^3))
//       y  = 0.5 * x * (1 + t)
//       dx = grad * (0.5 * (1 + t) + 0.5 * x * (1 - t^2) * sqrt(2 / pi) * (1 + 3 * 0.044715 * x^2))
//
//   n elements, contiguous. Math in float32 (erff, tanhf, expf: full-precision CUDA math),
//   rounded once to T. In place is allowed (y == x, dx == grad or dx == x).
//
// Launch configuration (both):
//   grid-stride loop over the n elements.
//   grid  = (min(ceil(n / 256), 65536), 1, 1)   any grid size is correct
//   block = (256, 1, 1)                         any multiple of 32 up to 1024
//   shared memory: none (0 bytes).

#include <cuda_fp16.h>
#include <cuda_bf16.h>

#define GELU_SQRT1_2 0.70710678118654752440f        // 1 / sqrt(2)
#define GELU_INV_SQRT_2PI 0.39894228040143267794f   // 1 / sqrt(2 pi)
#define GELU_SQRT_2_OVER_PI 0.79788456080286535588f // sqrt(2 / pi)
#define GELU_C 0.044715f

__device__ __forceinline__ float ge_load(const float* p) { return *p; }
__device__ __forceinline__ float ge_load(const __half* p) { return __half2float(*p); }
__device__ __forceinline__ float ge_load(const __nv_bfloat16* p) { return __bfloat162float(*p); }

__device__ __forceinline__ void ge_store(float* p, float v) { *p = v; }
__device__ __forceinline__ void ge_store(__half* p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void ge_store(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

template <typename T>
__device__ __forceinline__ void gelu_forward_elems(const T* x, T* y, long long n, int approximate) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        const float v = ge_load(x + i);
        float out;
        if (approximate) {
            const float t = tanhf(GELU_SQRT_2_OVER_PI * (v + GELU_C * v * v * v));
            out = 0.5f * v * (1.0f + t);
        } else {
            out = 0.5f * v * (1.0f + erff(v * GELU_SQRT1_2));
        }
        ge_store(y + i, out);
    }
}

template <typename T>
__device__ __forceinline__ void gelu_backward_elems(const T* grad, const T* x, T* dx, long long n,
                                                    int approximate) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        const float g = ge_load(grad + i), v = ge_load(x + i);
        float d;
        if (approximate) {
            const float v2 = v * v;
            const float t = tanhf(GELU_SQRT_2_OVER_PI * (v + GELU_C * v2 * v));
            d = 0.5f * (1.0f + t)
                + 0.5f * v * (1.0f - t * t) * GELU_SQRT_2_OVER_PI * (1.0f + 3.0f * GELU_C * v2);
        } else {
            d = 0.5f * (1.0f + erff(v * GELU_SQRT1_2))
                + v * expf(-0.5f * v * v) * GELU_INV_SQRT_2PI;
        }
        ge_store(dx + i, g * d);
    }
}

#define GELU_KERNELS(T, S)                                                                         \
    extern "C" __global__ void __launch_bounds__(1024) gelu_forward_##S(                           \
        const T* x, T* y, long long n, int approximate) {                                          \
        gelu_forward_elems<T>(x, y, n, approximate);                                               \
    }                                                                                              \
    extern "C" __global__ void __launch_bounds__(1024) gelu_backward_##S(                          \
        const T* grad, const T* x, T* dx, long long n, int approximate) {                          \
        gelu_backward_elems<T>(grad, x, dx, n, approximate);                                       \
    }

GELU_KERNELS(float, f32)
GELU_KERNELS(__half, f16)
GELU_KERNELS(__nv_bfloat16, bf16)
