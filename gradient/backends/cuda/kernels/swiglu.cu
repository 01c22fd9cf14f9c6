// SwiGLU, the gated feed-forward activation of LLaMA-family models: silu(gate) * up.
//
// Kernels (one per storage dtype T: _f32 float, _f16 __half, _bf16 __nv_bfloat16):
//
//   swiglu_forward_f32 / _f16 / _bf16(const T* gate, const T* up, T* out, long long n)
//       out = silu(gate) * up,   silu(g) = g * sigmoid(g) = g / (1 + exp(-g))
//   swiglu_backward_f32 / _f16 / _bf16(const T* grad, const T* gate, const T* up,
//                                      T* dgate, T* dup, long long n)
//       dup   = grad * silu(gate)
//       dgate = grad * up * sigmoid(gate) * (1 + gate * (1 - sigmoid(gate)))
//
//   gate, up, out, grad, dgate, dup: n elements each, contiguous (the two halves of a fused
//   gate_up projection must be made contiguous first). Math in float32, rounded once to T.
//   In place is allowed (out == gate or up; dgate == gate, dup == up, or either == grad): each
//   thread reads its element of every input before writing.
//
// Launch configuration (both):
//   grid-stride loop over the n elements.
//   grid  = (min(ceil(n / 256), 65536), 1, 1)   any grid size is correct
//   block = (256, 1, 1)                         any multiple of 32 up to 1024
//   shared memory: none (0 bytes).

#include <cuda_fp16.h>
#include <cuda_bf16.h>

__device__ __forceinline__ float sw_load(const float* p) { return *p; }
__device__ __forceinline__ float sw_load(const __half* p) { return __half2float(*p); }
__device__ __forceinline__ float sw_load(const __nv_bfloat16* p) { return __bfloat162float(*p); }

__device__ __forceinline__ void sw_store(float* p, float v) { *p = v; }
__device__ __forceinline__ void sw_store(__half* p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void sw_store(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

// 1 / (1 + exp(-g)): for g -> -inf exp overflows to inf and the result is 0, as it should be
__device__ __forceinline__ float sw_sigmoid(float g) { return 1.0f / (1.0f + expf(-g)); }

template <typename T>
__device__ __forceinline__ void swiglu_forward_elems(const T* gate, const T* up, T* out,
                                                     long long n) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        const float g = sw_load(gate + i), u = sw_load(up + i);
        sw_store(out + i, g * sw_sigmoid(g) * u);
    }
}

template <typename T>
__device__ __forceinline__ void swiglu_backward_elems(const T* grad, const T* gate, const T* up,
                                                      T* dgate, T* dup, long long n) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        const float dy = sw_load(grad + i), g = sw_load(gate + i), u = sw_load(up + i);
        const float s = sw_sigmoid(g);
        const float silu = g * s;
        sw_store(dgate + i, dy * u * s * (1.0f + g * (1.0f - s)));
        sw_store(dup + i, dy * silu);
    }
}

#define SWIGLU_KERNELS(T, S)                                                                       \
    extern "C" __global__ void __launch_bounds__(1024) swiglu_forward_##S(                         \
        const T* gate, const T* up, T* out, long long n) {                                         \
        swiglu_forward_elems<T>(gate, up, out, n);                                                 \
    }                                                                                              \
    extern "C" __global__ void __launch_bounds__(1024) swiglu_backward_##S(                        \
        const T* grad, const T* gate, const T* up, T* dgate, T* dup, long long n) {                \
        swiglu_backward_elems<T>(grad, gate, up, dgate, dup, n);                                   \
    }

SWIGLU_KERNELS(float, f32)
SWIGLU_KERNELS(__half, f16)
SWIGLU_KERNELS(__nv_bfloat16, bf16)
