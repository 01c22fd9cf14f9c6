// One fused Adam / AdamW step, in place, over flat arrays: the arithmetic of PyTorch's
// single-tensor (foreach=False) Adam/AdamW, in the same order, in one pass over memory.
//
// Kernels (one per storage dtype T of param and grad: _f32 float, _f16 __half,
// _bf16 __nv_bfloat16; the moments are always float32):
//
//   adamw_step_f32 / _f16 / _bf16(
//       T*           param,           // (n,) updated in place
//       const T*     grad,            // (n,)
//       float*       exp_avg,         // (n,) float32, first moment m, updated in place
//       float*       exp_avg_sq,      // (n,) float32, second moment v, updated in place
//       float*       max_exp_avg_sq,  // (n,) float32 running max of v (amsgrad), or NULL
//       long long    n,
//       double lr, double beta1, double beta2, double eps, double weight_decay,
//       double bias_correction1,      // 1 - beta1 ** step   (step counts this update: 1, 2, ...)
//       double bias_correction2,      // 1 - beta2 ** step
//       int decoupled,                // 1: AdamW (param *= 1 - lr * wd)
//                                     // 0: Adam (grad += wd * param)
//       int maximize)                 // 1: ascend (grad = -grad)
//
//   Per element, in float32 except where noted (fma: one rounding, as PyTorch's CPU kernels
//   compute add with alpha, lerp and addcmul):
//     g = maximize ? -grad : grad
//     if wd != 0:  decoupled ? param = param * (1 - lr * wd)      [the factor computed in double]
//                            : g = fma(wd, param, g)
//     m = lerp(m, g, w), w = 1 - beta1   PyTorch's lerp: |w| < 0.5 ? fma(w, g - m, m)
//                                                                  : fma(w - 1, g - m, g)
//     v = fma((1 - beta2) * g, g, v * beta2)
//     vmax = max(vmax, v)                (amsgrad only; the denominator then uses vmax)
//     denom = sqrt(v) / sqrt(bias_correction2) + eps
//     param = param + (-(lr / bias_correction1) * m) / denom     [lr / bias_correction1 in double]
//
//   The hyperparameters are doubles because PyTorch computes these scalars from Python floats
//   (doubles) and rounds each to float32 once, where it meets a tensor; doing the same gives the
//   same bits as gradient's CPU step and its composition of tensor ops. Each other float
//   operation is rounded on its own (__fmul_rn & co.): no contraction the source does not ask
//   for, which would change the bits.
//
// Launch configuration:
//   grid-stride loop over the n elements.
//   grid  = (min(ceil(n / 256), 65536), 1, 1)   any grid size is correct
//   block = (256, 1, 1)                         any multiple of 32 up to 1024
//   shared memory: none (0 bytes).

#include <cuda_fp16.h>
#include <cuda_bf16.h>

__device__ __forceinline__ float ad_load(const float* p) { return *p; }
__device__ __forceinline__ float ad_load(const __half* p) { return __half2float(*p); }
__device__ __forceinline__ float ad_load(const __nv_bfloat16* p) { return __bfloat162float(*p); }

__device__ __forceinline__ void ad_store(float* p, float v) { *p = v; }
__device__ __forceinline__ void ad_store(__half* p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void ad_store(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

template <typename T>
__device__ __forceinline__ void adamw_step_elems(T* param, const T* grad, float* exp_avg,
                                                 float* exp_avg_sq, float* max_exp_avg_sq,
                                                 long long n, double lr, double beta1,
                                                 double beta2, double eps, double weight_decay,
                                                 double bias_correction1, double bias_correction2,
                                                 int decoupled, int maximize) {
    // the scalars, as PyTorch's Python code computes them (double), each rounded once to float
    const bool decay = weight_decay != 0.0 && decoupled;
    const bool l2 = weight_decay != 0.0 && !decoupled;
    const float decay_factor = (float)(1.0 - lr * weight_decay);
    const float wd = (float)weight_decay;
    const float w1 = (float)(1.0 - beta1);             // lerp weight
    const float w1_minus_one = __fsub_rn(w1, 1.0f);    // lerp's other coefficient, in float
    const float b2 = (float)beta2;
    const float one_minus_b2 = (float)(1.0 - beta2);
    const float bc2_sqrt = (float)sqrt(bias_correction2);
    const float epsf = (float)eps;
    const float neg_step = (float)(-(lr / bias_correction1));

    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        float g = ad_load(grad + i);
        if (maximize) g = -g;
        float p = ad_load(param + i);
        if (decay) p = __fmul_rn(p, decay_factor);
        // PyTorch's single-tensor ops, one fused multiply-add where its CPU kernels make one:
        // grad.add(p, alpha=wd), exp_avg.lerp_(grad, w1), exp_avg_sq.mul_(b2).addcmul_(...)
        if (l2) g = __fmaf_rn(wd, p, g);
        const float m0 = exp_avg[i];
        const float diff = __fsub_rn(g, m0);
        const float m = fabsf(w1) < 0.5f ? __fmaf_rn(w1, diff, m0)
                                         : __fmaf_rn(w1_minus_one, diff, g);
        const float v = __fmaf_rn(__fmul_rn(one_minus_b2, g), g, __fmul_rn(exp_avg_sq[i], b2));
        float second = v;
        if (max_exp_avg_sq) {
            second = fmaxf(max_exp_avg_sq[i], v);
            max_exp_avg_sq[i] = second;
        }
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(second), bc2_sqrt), epsf);
        ad_store(param + i, __fadd_rn(p, __fdiv_rn(__fmul_rn(neg_step, m), denom)));  // addcdiv_
    }
}

#define ADAMW_KERNELS(T, S)                                                                        \
    extern "C" __global__ void __launch_bounds__(1024) adamw_step_##S(                             \
        T* param, const T* grad, float* exp_avg, float* exp_avg_sq, float* max_exp_avg_sq,         \
        long long n, double lr, double beta1, double beta2, double eps, double weight_decay,       \
        double bias_correction1, double bias_correction2, int decoupled, int maximize) {           \
        adamw_step_elems<T>(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, n, lr, beta1,        \
                            beta2, eps, weight_decay, bias_correction1, bias_correction2,          \
                            decoupled, maximize);                                                  \
    }

ADAMW_KERNELS(float, f32)
ADAMW_KERNELS(__half, f16)
ADAMW_KERNELS(__nv_bfloat16, bf16)
