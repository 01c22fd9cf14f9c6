// Embedding backward: the gradient of a lookup table, grad_weight[ids[i], :] += grad_out[i, :].
//
// Kernels (one per storage dtype T of grad_out: _f32 float, _f16 __half, _bf16 __nv_bfloat16):
//
//   embedding_backward_f32 / _f16 / _bf16(
//       const long long* ids,          // (n_ids,) int64 row indices (any shape, flattened)
//       const T*         grad_out,     // (n_ids, dim), contiguous: dL/d(output)
//       float*           grad_weight,  // (num_embeddings, dim) float32, ZEROED (or holding a sum
//                                      //   to add to) by the caller; cast it to T afterwards
//       long long n_ids, long long dim, long long num_embeddings,
//       long long padding_idx)         // rows equal to it get no gradient (PyTorch's
//                                      //   padding_idx); pass -1 (any value outside
//                                      //   [0, num_embeddings)) for none
//
//   for every i, j: grad_weight[ids[i], j] += grad_out[i, j]   (atomicAdd in float32)
//   An id outside [0, num_embeddings) is skipped: the caller checks ids beforehand (the forward
//   lookup has already failed on them in a training step). Repeated ids are summed in an order
//   that depends on the schedule: the float32 sums are not bitwise reproducible run to run.
//
// Launch configuration:
//   grid-stride loop over the n_ids * dim elements of grad_out (consecutive threads take
//   consecutive columns of one row: coalesced reads, and atomics to consecutive addresses).
//   grid  = (min(ceil(n_ids * dim / 256), 65536), 1, 1)   any grid size is correct
//   block = (256, 1, 1)                                   any multiple of 32 up to 1024
//   shared memory: none (0 bytes).

#include <cuda_fp16.h>
#include <cuda_bf16.h>

__device__ __forceinline__ float em_load(const float* p) { return *p; }
__device__ __forceinline__ float em_load(const __half* p) { return __half2float(*p); }
__device__ __forceinline__ float em_load(const __nv_bfloat16* p) { return __bfloat162float(*p); }

template <typename T>
__device__ __forceinline__ void embedding_backward_elems(const long long* ids, const T* grad_out,
                                                         float* grad_weight, long long n_ids,
                                                         long long dim, long long num_embeddings,
                                                         long long padding_idx) {
    const long long total = n_ids * dim;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const long long row = ids[i / dim];
        if (row < 0 || row >= num_embeddings || row == padding_idx) continue;
        atomicAdd(grad_weight + row * dim + i % dim, em_load(grad_out + i));
    }
}

#define EMBEDDING_KERNELS(T, S)                                                                    \
    extern "C" __global__ void __launch_bounds__(1024) embedding_backward_##S(                     \
        const long long* ids, const T* grad_out, float* grad_weight, long long n_ids,              \
        long long dim, long long num_embeddings, long long padding_idx) {                          \
        embedding_backward_elems<T>(ids, grad_out, grad_weight, n_ids, dim, num_embeddings,        \
                                    padding_idx);                                                  \
    }

EMBEDDING_KERNELS(float, f32)
EMBEDDING_KERNELS(__half, f16)
EMBEDDING_KERNELS(__nv_bfloat16, bf16)
