// Decode attention: one new query token per sequence against a KV cache, with grouped-query heads.
//
// Kernels (one per storage dtype T: _f32 float, _f16 __half, _bf16 __nv_bfloat16):
//
//   decode_attention_f32 / _f16 / _bf16(
//       const T*   q,          // (batch, n_heads, head_dim), contiguous
//       const T*   k_cache,    // (batch, n_kv_heads, max_seq, head_dim), contiguous
//       const T*   v_cache,    // (batch, n_kv_heads, max_seq, head_dim), contiguous
//       T*         out,        // (batch, n_heads, head_dim), contiguous
//       const int* seq_lens,   // (batch,) int32: valid cache positions 0 .. seq_lens[b]-1 of sequence b
//       int n_heads, int n_kv_heads, int max_seq, int head_dim,
//       float scale,           // the softmax scale, usually 1/sqrt(head_dim)
//       int window)            // sliding window: keys at positions < seq_len - window are skipped;
//                              // window <= 0: no window
//
//   computes, for every batch b and query head h (using kv head h / (n_heads / n_kv_heads)),
//       out[b, h] = sum_j softmax_j(scale * q[b, h] . k[b, kvh, j]) v[b, kvh, j]
//   over positions j in [max(0, seq_len - window), seq_len) (all of [0, seq_len) without a window).
//   seq_lens[b] is clamped to [0, max_seq]; a sequence with no key to attend to gets zeros.
//   The query is the token at position seq_len - 1 (already written to the cache), so the window
//   keeps the `window` most recent positions, that one included.
//
// Launch configuration:
//   grid  = (n_heads, batch, 1)            one block per (batch, head)
//   block = (128, 1, 1)                    four warps; any multiple of 32 up to 256 is correct
//                                          (__launch_bounds__(256): about 180 registers a thread)
//   shared memory: static only (8 KB + 64 B); pass 0 bytes of dynamic shared memory.
//   Requirements checked by the caller: 1 <= head_dim <= 256, n_heads % n_kv_heads == 0.
//
// How: each warp takes tiles of 32 consecutive keys (tile w, w + n_warps, ...). Lanes split
// head_dim (lane l holds elements l, l + 32, ...), so every key and value row is read coalesced.
// The 32 partial dot products of a tile are reduced with a transposing butterfly (31 shuffles
// leave lane t holding the score of key t), then the warp updates its running maximum m, its
// running sum l and its output accumulator (online softmax): nothing grows with seq_len. At the
// end the warps' (m, l, acc) are merged through shared memory. Math and accumulation are float32.

#include <cuda_fp16.h>
#include <cuda_bf16.h>

#define DA_MAX_HEAD_DIM 256
#define DA_MAX_WARPS 8
#define DA_FULL_MASK 0xffffffffu

__device__ __forceinline__ float da_load(const float* p) { return *p; }
__device__ __forceinline__ float da_load(const __half* p) { return __half2float(*p); }
__device__ __forceinline__ float da_load(const __nv_bfloat16* p) { return __bfloat162float(*p); }

__device__ __forceinline__ void da_store(float* p, float v) { *p = v; }
__device__ __forceinline__ void da_store(__half* p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void da_store(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

__device__ __forceinline__ float da_neg_inf() { return __int_as_float(0xff800000); }

__device__ __forceinline__ float da_warp_max(float v) {
#pragma unroll
    for (int off = 16; off >= 1; off >>= 1) v = fmaxf(v, __shfl_xor_sync(DA_FULL_MASK, v, off));
    return v;
}

__device__ __forceinline__ float da_warp_sum(float v) {
#pragma unroll
    for (int off = 16; off >= 1; off >>= 1) v += __shfl_xor_sync(DA_FULL_MASK, v, off);
    return v;
}

// One step of da_transpose_sum: pairs (i, i + OFF) for i < OFF; a lane keeps one value of each
// pair (the upper one where bit OFF of its lane id is set) and sends its partner the other.
template <int OFF>
__device__ __forceinline__ void da_transpose_step(float (&part)[32], bool upper) {
#pragma unroll
    for (int i = 0; i < OFF; ++i) {
        const float send = upper ? part[i] : part[i + OFF];
        const float keep = upper ? part[i + OFF] : part[i];
        part[i] = keep + __shfl_xor_sync(DA_FULL_MASK, send, OFF);
    }
}

// Sums 32 values across the warp at once: on entry lane l holds part[t] = its share of value t;
// on return part[0] of lane t is the sum over lanes of part[t]. Each step halves the values a lane
// still carries, so the whole reduction takes 16 + 8 + 4 + 2 + 1 = 31 shuffles instead of 32 * 5.
__device__ __forceinline__ void da_transpose_sum(float (&part)[32], int lane) {
    da_transpose_step<16>(part, (lane & 16) != 0);
    da_transpose_step<8>(part, (lane & 8) != 0);
    da_transpose_step<4>(part, (lane & 4) != 0);
    da_transpose_step<2>(part, (lane & 2) != 0);
    da_transpose_step<1>(part, (lane & 1) != 0);
}

// One warp's share of the keys, for DPT = ceil(head_dim / 32) elements per lane (2, 4 or 8).
// Leaves the warp's running max m, running sum l and unnormalised output acc (lane's elements).
template <typename T, int DPT>
__device__ __forceinline__ void da_warp_pass(const T* __restrict__ qrow, const T* __restrict__ kb,
                                             const T* __restrict__ vb, int head_dim, float scale,
                                             int start, int len, int warp, int n_warps, int lane,
                                             float& m, float& l, float (&acc)[DPT]) {
    float qv[DPT];
#pragma unroll
    for (int i = 0; i < DPT; ++i) {
        const int d = lane + 32 * i;
        qv[i] = d < head_dim ? da_load(qrow + d) : 0.0f;
        acc[i] = 0.0f;
    }
    m = da_neg_inf();
    l = 0.0f;
    const int n_tiles = (len - start + 31) / 32;
    for (int tile = warp; tile < n_tiles; tile += n_warps) {
        const int j0 = start + tile * 32;
        const int nt = min(32, len - j0);  // valid keys in this tile (>= 1)
        // Scores: rows past the end are clamped to the last valid one (a cached re-read) and
        // masked below, so the unrolled loop has no branch.
        float part[32];
#pragma unroll
        for (int t = 0; t < 32; ++t) {
            const T* krow = kb + (unsigned long long)min(j0 + t, len - 1) * head_dim;
            float s = 0.0f;
#pragma unroll
            for (int i = 0; i < DPT; ++i) {
                const int d = lane + 32 * i;
                if (d < head_dim) s = fmaf(qv[i], da_load(krow + d), s);
            }
            part[t] = s;
        }
        da_transpose_sum(part, lane);
        const bool valid = lane < nt;
        const float s = valid ? part[0] * scale : da_neg_inf();
        const float m_new = fmaxf(m, da_warp_max(s));   // finite: the tile has a valid key
        const float corr = expf(m - m_new);              // 0 on the first tile (m = -inf)
        const float p = valid ? expf(s - m_new) : 0.0f;
        l = l * corr + da_warp_sum(p);
#pragma unroll
        for (int i = 0; i < DPT; ++i) acc[i] *= corr;
#pragma unroll
        for (int t = 0; t < 32; ++t) {
            const float pt = __shfl_sync(DA_FULL_MASK, p, t);
            const T* vrow = vb + (unsigned long long)min(j0 + t, len - 1) * head_dim;
#pragma unroll
            for (int i = 0; i < DPT; ++i) {
                const int d = lane + 32 * i;
                if (d < head_dim) acc[i] = fmaf(pt, da_load(vrow + d), acc[i]);
            }
        }
        m = m_new;
    }
}

template <typename T>
__device__ __forceinline__ void da_decode_attention(const T* __restrict__ q, const T* __restrict__ k_cache,
                                                    const T* __restrict__ v_cache, T* __restrict__ out,
                                                    const int* __restrict__ seq_lens, int n_heads,
                                                    int n_kv_heads, int max_seq, int head_dim, float scale,
                                                    int window) {
    __shared__ float sm_m[DA_MAX_WARPS];
    __shared__ float sm_l[DA_MAX_WARPS];
    __shared__ float sm_acc[DA_MAX_WARPS][DA_MAX_HEAD_DIM];

    const int h = blockIdx.x;
    const int b = blockIdx.y;
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int n_warps = min((int)(blockDim.x >> 5), DA_MAX_WARPS);
    const int group = max(n_heads / max(n_kv_heads, 1), 1);
    const int kvh = h / group;

    const int len = min(max(seq_lens[b], 0), max_seq);
    const int start = (window > 0 && len > window) ? len - window : 0;

    const T* qrow = q + ((unsigned long long)b * n_heads + h) * head_dim;
    const unsigned long long kv_off = ((unsigned long long)b * n_kv_heads + kvh) * max_seq * head_dim;
    const T* kb = k_cache + kv_off;
    const T* vb = v_cache + kv_off;

    if (warp < n_warps) {  // warps beyond DA_MAX_WARPS only help with the final merge
        float m, l;
        if (head_dim <= 64) {
            float acc[2];
            da_warp_pass<T, 2>(qrow, kb, vb, head_dim, scale, start, len, warp, n_warps, lane, m, l, acc);
#pragma unroll
            for (int i = 0; i < 2; ++i)
                if (lane + 32 * i < head_dim) sm_acc[warp][lane + 32 * i] = acc[i];
        } else if (head_dim <= 128) {
            float acc[4];
            da_warp_pass<T, 4>(qrow, kb, vb, head_dim, scale, start, len, warp, n_warps, lane, m, l, acc);
#pragma unroll
            for (int i = 0; i < 4; ++i)
                if (lane + 32 * i < head_dim) sm_acc[warp][lane + 32 * i] = acc[i];
        } else {
            float acc[8];
            da_warp_pass<T, 8>(qrow, kb, vb, head_dim, scale, start, len, warp, n_warps, lane, m, l, acc);
#pragma unroll
            for (int i = 0; i < 8; ++i)
                if (lane + 32 * i < head_dim) sm_acc[warp][lane + 32 * i] = acc[i];
        }
        if (lane == 0) {
            sm_m[warp] = m;
            sm_l[warp] = l;
        }
    }
    __syncthreads();

    // Merge: rescale every warp's partial results to the overall maximum.
    float big = da_neg_inf();
    for (int w = 0; w < n_warps; ++w) big = fmaxf(big, sm_m[w]);
    float weight[DA_MAX_WARPS];
    float total = 0.0f;
#pragma unroll
    for (int w = 0; w < DA_MAX_WARPS; ++w) {
        // A warp that saw no key has m = -inf and contributes nothing (and no NaN).
        weight[w] = (w < n_warps && sm_m[w] != da_neg_inf()) ? expf(sm_m[w] - big) : 0.0f;
        if (w < n_warps) total = fmaf(sm_l[w], weight[w], total);
    }
    const float inv = total > 0.0f ? 1.0f / total : 0.0f;
    T* orow = out + ((unsigned long long)b * n_heads + h) * head_dim;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
        float o = 0.0f;
#pragma unroll
        for (int w = 0; w < DA_MAX_WARPS; ++w)
            if (w < n_warps) o = fmaf(sm_acc[w][d], weight[w], o);
        da_store(orow + d, o * inv);
    }
}

#define DA_DEFINE(SUFFIX, T)                                                                           \
    extern "C" __global__ void __launch_bounds__(256) decode_attention_##SUFFIX(                       \
        const T* __restrict__ q, const T* __restrict__ k_cache, const T* __restrict__ v_cache,          \
        T* __restrict__ out, const int* __restrict__ seq_lens, int n_heads, int n_kv_heads,             \
        int max_seq, int head_dim, float scale, int window) {                                          \
        da_decode_attention<T>(q, k_cache, v_cache, out, seq_lens, n_heads, n_kv_heads, max_seq,       \
                               head_dim, scale, window);                                               \
    }

DA_DEFINE(f32, float)
DA_DEFINE(f16, __half)
DA_DEFINE(bf16, __nv_bfloat16)
