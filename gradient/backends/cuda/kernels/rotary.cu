// Rotary position embedding in the Hugging Face "rotate_half" layout, forward and backward.
//
// Kernels (one per storage dtype T: _f32 float, _f16 __half, _bf16 __nv_bfloat16):
//
//   rotary_embedding_f32 / _f16 / _bf16(
//       const T* x,          // (batch, heads, seq, head_dim), contiguous; head_dim even
//       const T* cos_table,  // (seq, head_dim) shared by the batch, or (batch, seq, head_dim)
//       const T* sin_table,  // same shape as cos_table
//       T*       out,        // like x; out == x (in place) is allowed
//       long long batch, long long heads, long long seq, long long head_dim,
//       long long cs_batch_stride,  // elements between batches of cos/sin: 0 when shared,
//                                   // seq * head_dim for per-batch tables (position ids)
//       int sin_folded,      // 0: sin is the plain sine table (transformers' layout)
//                            // 1: sin has rotate_half's sign folded in (-sin on the first half,
//                            //    gradient.models.llama.RotaryEmbedding's table)
//       int backward)        // 0: forward; 1: the gradient with respect to x (x holds dL/dout)
//
//   With half = head_dim / 2 and rotate_half(x) = concat(-x[half:], x[:half]):
//     forward:   out = x * cos + rotate_half(x) * sin                      (sin_folded = 0)
//                out = x * cos + roll(x, half) * sin                       (sin_folded = 1)
//     backward:  the transpose of that linear map applied to the incoming gradient g:
//                dx[d] = g[d] * cos[d] + s(p) * sin[p] * g[p],   p = d +- half (the partner of d),
//                s(p) = +1 for p >= half and -1 for p < half (plain sin), s = +1 (folded sin).
//                For tables whose two halves are equal (every standard rotary cache) this is the
//                forward with -sin.
//   Math in float32, rounded once to T.
//
// Launch configuration:
//   grid-stride over the batch * heads * seq * half pairs (d, d + half): one thread per pair,
//   so in-place use is safe.
//   grid  = (min(ceil(pairs / 256), 65536), 1, 1)        any grid size is correct
//   block = (256, 1, 1)                                  any multiple of 32 up to 1024
//   shared memory: none (0 bytes).

#include <cuda_fp16.h>
#include <cuda_bf16.h>

__device__ __forceinline__ float rt_load(const float* p) { return *p; }
__device__ __forceinline__ float rt_load(const __half* p) { return __half2float(*p); }
__device__ __forceinline__ float rt_load(const __nv_bfloat16* p) { return __bfloat162float(*p); }

__device__ __forceinline__ void rt_store(float* p, float v) { *p = v; }
__device__ __forceinline__ void rt_store(__half* p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void rt_store(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

template <typename T>
__device__ __forceinline__ void rotary_pairs(const T* x, const T* cos_table, const T* sin_table,
                                             T* out, long long batch, long long heads,
                                             long long seq, long long head_dim,
                                             long long cs_batch_stride, int sin_folded,
                                             int backward) {
    const long long half = head_dim / 2;
    const long long pairs = batch * heads * seq * half;
    // sign of the partner's term in the first and the second half (see the header)
    const float first = sin_folded ? 1.0f : -1.0f;  // forward: out[d < half] uses -x[d + half]
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < pairs;
         i += (long long)gridDim.x * blockDim.x) {
        const long long d = i % half;
        const long long vec = i / half;                   // (b, h, t) flattened
        const long long t = vec % seq;
        const long long b = vec / (heads * seq);
        const long long xo = vec * head_dim + d;          // x[b, h, t, d]; partner at + half
        const long long co = b * cs_batch_stride + t * head_dim + d;
        const float x1 = rt_load(x + xo), x2 = rt_load(x + xo + half);
        const float c1 = rt_load(cos_table + co), c2 = rt_load(cos_table + co + half);
        const float s1 = rt_load(sin_table + co), s2 = rt_load(sin_table + co + half);
        float y1, y2;
        if (!backward) {
            y1 = x1 * c1 + first * x2 * s1;               // partner of d is d + half
            y2 = x2 * c2 + x1 * s2;                       // partner of d + half is d
        } else {
            y1 = x1 * c1 + x2 * s2;                       // term of out[d + half] (sign +1)
            y2 = x2 * c2 + first * x1 * s1;               // term of out[d] (sign `first`)
        }
        rt_store(out + xo, y1);
        rt_store(out + xo + half, y2);
    }
}

#define ROTARY_KERNELS(T, S)                                                                       \
    extern "C" __global__ void __launch_bounds__(1024) rotary_embedding_##S(                       \
        const T* x, const T* cos_table, const T* sin_table, T* out, long long batch,               \
        long long heads, long long seq, long long head_dim, long long cs_batch_stride,             \
        int sin_folded, int backward) {                                                            \
        rotary_pairs<T>(x, cos_table, sin_table, out, batch, heads, seq, head_dim,                 \
                        cs_batch_stride, sin_folded, backward);                                    \
    }

ROTARY_KERNELS(float, f32)
ROTARY_KERNELS(__half, f16)
ROTARY_KERNELS(__nv_bfloat16, bf16)
