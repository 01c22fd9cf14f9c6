// FlashAttention for training and prefill: softmax(scale * q k^T) v and its gradients, the (L, S)
// score matrix never written to global memory (FlashAttention-2: online softmax forward,
// recomputed probabilities backward).
//
// Kernels (one per storage dtype T: _f32 float, _f16 __half, _bf16 __nv_bfloat16). Every array
// is contiguous; Z = batch * heads; L queries, S keys, E = query/key head dim, Ev = value head
// dim; 0 <= L, S < 2^31 (S >= 1 for the forward to be defined).
//
//   flash_attention_forward_f32 / _f16 / _bf16(
//       const T* q,       // (Z, L, E)
//       const T* k,       // (Z, S, E)
//       const T* v,       // (Z, S, Ev)
//       T*       out,     // (Z, L, Ev)   softmax(scale * q k^T [+ causal mask]) v
//       float*   lse,     // (Z, L)       log-sum-exp of each row's scaled scores (natural log)
//       int L, int S, int E, int Ev,
//       float scale,      // usually 1 / sqrt(E)
//       int causal)       // nonzero: query i sees keys 0..i (top-left aligned, as PyTorch's
//                         // is_causal, also when L != S); S >= 1 so no row is empty
//
//   flash_attention_backward_dot_f32 / _f16 / _bf16(
//       const T* grad,    // (rows, cols)   dL/d out
//       const T* out,     // (rows, cols)   the forward's out
//       float*   delta,   // (rows,)        delta = rowsum(grad * out), float32
//       long long rows, int cols)
//
//   flash_attention_backward_dkdv_f32 / _f16 / _bf16(
//       const T* q, const T* k, const T* v, const T* grad, const float* lse, const float* delta,
//       T* dk,            // (Z, S, E)    scale * dS^T q
//       T* dv,            // (Z, S, Ev)   P^T grad
//       int L, int S, int E, int Ev, float scale, int causal)
//
//   flash_attention_backward_dq_f32 / _f16 / _bf16(
//       const T* q, const T* k, const T* v, const T* grad, const float* lse, const float* delta,
//       T* dq,            // (Z, L, E)    scale * dS k
//       int L, int S, int E, int Ev, float scale, int causal)
//
//   with P = exp(scale * q k^T - lse) (zero where masked) recomputed tile by tile, and
//   dS = P * (grad v^T - delta). The backward is two kernels, one block per key tile for dk/dv
//   (looping over the query tiles) and one block per query tile for dq (looping over the key
//   tiles): no atomics, deterministic results, written directly in T, at the price of
//   computing q k^T and grad v^T twice.
//
// Launch configuration (every kernel: static shared memory only, pass 0 bytes of dynamic shared
// memory). The tiles depend on the head-dim bucket D = 32, 64 or 128, the smallest with
// max(E, Ev) <= D; max(E, Ev) > 128 is refused (the kernels return without writing):
//
//                      forward         backward_dkdv        backward_dq
//     D = 32           BM 64, BN 64    BM 32, BN 64         BM 64, BN 32
//     D = 64           BM 64, BN 32    BM 32, BN 32         BM 32, BN 32
//     D = 128          BM 32, BN 16    BM 16, BN 16         BM 16, BN 16
//   (BM query rows, BN keys a tile; at most 42 KB of static shared memory a block.)
//
//   forward, backward_dq:  grid = (Z, min(ceil(L / BM), 65535), 1)   block = (128, 1, 1)
//   backward_dkdv:         grid = (Z, min(ceil(S / BN), 65535), 1)   block = (128, 1, 1)
//       blockIdx.x is z; blocks stride over the tiles by gridDim.y, so a smaller grid.y is also
//       correct. The block must be exactly 128 threads.
//   backward_dot:          grid = (min(ceil(rows / 4), 2^31 - 1), 1, 1)   block = (128, 1, 1)
//       a warp per row (blocks stride over the rows; any multiple of 32 threads is correct).
//
// How: the 128 threads of a block are a 16 x 8 grid (ty = tid / 8, tx = tid % 8; a warp is 4
// ty by 8 tx). Tiles are staged in shared memory as float32, row-major with a padded row
// (D + 1 or BN + 1 floats: the strided reads below are free of bank conflicts), loaded a warp
// per row (coalesced). Every product is a register-tiled outer product: thread (ty, tx) owns
// rows ty, ty + 16, ... and columns tx, tx + 8, ... of its result. The forward keeps, per query
// row, the running maximum m and sum l (in log2 units: exp2f of scores pre-multiplied by
// scale * log2(e)) and rescales its output accumulator when m grows; the row maximum is
// reduced across the 8 tx lanes with shuffles, the sums only once at the end. Causal: the
// forward and dq stop at the last key tile a query tile sees, dk/dv start at the first query
// tile that sees the key tile; the forward and dq take query tiles from the last (the
// heaviest under the causal mask) to the first. Math and accumulation are float32, on the
// CUDA cores (no tensor-core mma: the same source runs on the CPU emulator of the tests).

#include <cuda_fp16.h>
#include <cuda_bf16.h>

#define FA_THREADS 128
#define FA_FULL_MASK 0xffffffffu
#define FA_SMEM_FLOATS 10560      // the largest carve-up below (backward_dkdv, D = 32): 42240 B
#define FA_LOG2E 1.4426950408889634f
#define FA_LN2 0.6931471805599453f

__device__ __forceinline__ float fa_load(const float* p) { return *p; }
__device__ __forceinline__ float fa_load(const __half* p) { return __half2float(*p); }
__device__ __forceinline__ float fa_load(const __nv_bfloat16* p) { return __bfloat162float(*p); }

__device__ __forceinline__ void fa_store(float* p, float v) { *p = v; }
__device__ __forceinline__ void fa_store(__half* p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void fa_store(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

__device__ __forceinline__ float fa_neg_inf() { return __int_as_float(0xff800000); }

// tile[r * ld + c] = src[(row0 + r) * cols + c] as float32, for r < ROWS and c < cols; rows at
// or past n_rows are zeros (finite: a masked probability of 0 times them stays 0). A warp a row,
// its lanes along the row: coalesced reads, conflict-free shared writes.
template <typename T, int ROWS>
__device__ __forceinline__ void fa_load_rows(float* tile, int ld, const T* __restrict__ src,
                                             int row0, int n_rows, int cols) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int r = warp; r < ROWS; r += FA_THREADS / 32) {
        const int row = row0 + r;
        const T* s = src + (long long)row * cols;
        for (int c = lane; c < cols; c += 32)
            tile[r * ld + c] = row < n_rows ? fa_load(s + c) : 0.0f;
    }
}

// dst[(row0 + r) * cols + c] = tile[r * ld + c] * mul for r < ROWS, row0 + r < n_rows, c < cols:
// the coalesced store of a result staged in shared memory.
template <typename T, int ROWS>
__device__ __forceinline__ void fa_store_rows(T* __restrict__ dst, const float* tile, int ld,
                                              int row0, int n_rows, int cols, float mul) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int r = warp; r < ROWS; r += FA_THREADS / 32) {
        const int row = row0 + r;
        if (row >= n_rows) break;
        T* d = dst + (long long)row * cols;
        for (int c = lane; c < cols; c += 32) fa_store(d + c, tile[r * ld + c] * mul);
    }
}

// The register-tiled product:
//     acc[i][j] += sum_{kk < n} a[i * a_i + kk * a_k] * b[j * b_j + kk * b_k]
// (a and b already offset to the thread's first row and column). The strides are compile-time
// constants after inlining; RI + RJ shared loads feed RI * RJ multiply-adds.
template <int RI, int RJ>
__device__ __forceinline__ void fa_product(float (&acc)[RI][RJ], const float* a, int a_i, int a_k,
                                           const float* b, int b_j, int b_k, int n) {
#pragma unroll 2
    for (int kk = 0; kk < n; ++kk) {
        float av[RI], bv[RJ];
#pragma unroll
        for (int i = 0; i < RI; ++i) av[i] = a[i * a_i + kk * a_k];
#pragma unroll
        for (int j = 0; j < RJ; ++j) bv[j] = b[j * b_j + kk * b_k];
#pragma unroll
        for (int i = 0; i < RI; ++i)
#pragma unroll
            for (int j = 0; j < RJ; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
}

// The number of key tiles of BN a query tile [q0, q0 + BM) reads: all of them, or under the
// causal mask those up to its last row's diagonal.
template <int BM, int BN>
__device__ __forceinline__ int fa_key_tiles(int q0, int L, int S, int causal) {
    const int n = (S + BN - 1) / BN;
    return causal ? min(n, (min(q0 + BM, L) + BN - 1) / BN) : n;
}

// ------------------------------------------------------------------------------------- forward
template <typename T, int D, int BM, int BN>
__device__ __forceinline__ void fa_forward(const T* __restrict__ q, const T* __restrict__ k,
                                           const T* __restrict__ v, T* __restrict__ out,
                                           float* __restrict__ lse, int L, int S, int E, int Ev,
                                           float scale, int causal, float* smem) {
    constexpr int LD = D + 1, LP = BN + 1, RM = BM / 16, RN = BN / 8, CJ = D / 8;
    static_assert(BM % 16 == 0 && BN % 8 == 0, "tiles must fill the 16 x 8 thread grid");
    static_assert(BM * LD + 2 * BN * LD + BM * LP <= FA_SMEM_FLOATS, "forward tiles too large");
    float* Qs = smem;            // BM x LD: the query tile; at the end the output staging
    float* Ks = Qs + BM * LD;    // BN x LD
    float* Vs = Ks + BN * LD;    // BN x LD
    float* Ps = Vs + BN * LD;    // BM x LP: the tile's probabilities (unnormalised)
    const int tx = threadIdx.x & 7, ty = threadIdx.x >> 3;
    const long long z = blockIdx.x;
    const T* qz = q + z * L * E;
    const T* kz = k + z * S * E;
    const T* vz = v + z * S * Ev;
    const float scale2 = scale * FA_LOG2E;  // scores in log2 units: exp2f(s - m)
    const int n_q_tiles = (L + BM - 1) / BM;

    for (int t = blockIdx.y; t < n_q_tiles; t += gridDim.y) {
        const int q0 = (n_q_tiles - 1 - t) * BM;  // the last (heaviest when causal) tiles first
        __syncthreads();  // the previous tile's output staging has been read
        fa_load_rows<T, BM>(Qs, LD, qz, q0, L, E);
        float m[RM], l[RM], acc[RM][CJ];
#pragma unroll
        for (int i = 0; i < RM; ++i) {
            m[i] = fa_neg_inf();
            l[i] = 0.0f;  // this thread's share of the row sum (its keys), all at the row's m
#pragma unroll
            for (int j = 0; j < CJ; ++j) acc[i][j] = 0.0f;
        }
        const int n_k_tiles = fa_key_tiles<BM, BN>(q0, L, S, causal);
        for (int kt = 0; kt < n_k_tiles; ++kt) {
            const int k0 = kt * BN;
            fa_load_rows<T, BN>(Ks, LD, kz, k0, S, E);
            fa_load_rows<T, BN>(Vs, LD, vz, k0, S, Ev);
            __syncthreads();
            float s[RM][RN];
#pragma unroll
            for (int i = 0; i < RM; ++i)
#pragma unroll
                for (int j = 0; j < RN; ++j) s[i][j] = 0.0f;
            fa_product(s, Qs + ty * LD, 16 * LD, 1, Ks + tx * LD, 8 * LD, 1, E);
#pragma unroll
            for (int i = 0; i < RM; ++i) {
                const int row = q0 + ty + 16 * i;
                float mt = fa_neg_inf();
#pragma unroll
                for (int j = 0; j < RN; ++j) {
                    const int key = k0 + tx + 8 * j;
                    const bool valid = key < S && (!causal || key <= row);
                    s[i][j] = valid ? s[i][j] * scale2 : fa_neg_inf();
                    mt = fmaxf(mt, s[i][j]);
                }
                // the row's maximum over the tile: the 8 tx lanes of the row are lanes 8a..8a+7
                mt = fmaxf(mt, __shfl_xor_sync(FA_FULL_MASK, mt, 1));
                mt = fmaxf(mt, __shfl_xor_sync(FA_FULL_MASK, mt, 2));
                mt = fmaxf(mt, __shfl_xor_sync(FA_FULL_MASK, mt, 4));
                const float m_new = fmaxf(m[i], mt);
                // a row with no visible key yet keeps m = -inf: subtract 0 instead (no NaN)
                const float m_use = m_new == fa_neg_inf() ? 0.0f : m_new;
                const float corr = exp2f(m[i] - m_use);  // 0 on the row's first visible tile
                m[i] = m_new;
                l[i] *= corr;
#pragma unroll
                for (int j = 0; j < CJ; ++j) acc[i][j] *= corr;
#pragma unroll
                for (int j = 0; j < RN; ++j) {
                    const float p = exp2f(s[i][j] - m_use);  // masked: exp2(-inf) = 0
                    l[i] += p;
                    Ps[(ty + 16 * i) * LP + tx + 8 * j] = p;
                }
            }
            __syncthreads();
            fa_product(acc, Ps + ty * LP, 16 * LP, 1, Vs + tx, 8, LD, BN);
            __syncthreads();  // Ks, Vs and Ps are free for the next tile
        }
        __syncthreads();  // Qs is free for the output (also when there was no key tile)
#pragma unroll
        for (int i = 0; i < RM; ++i) {
            float sum = l[i];
            sum += __shfl_xor_sync(FA_FULL_MASK, sum, 1);
            sum += __shfl_xor_sync(FA_FULL_MASK, sum, 2);
            sum += __shfl_xor_sync(FA_FULL_MASK, sum, 4);
            const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
            const int r = ty + 16 * i;
            if (tx == 0 && q0 + r < L) lse[z * L + q0 + r] = (m[i] + log2f(sum)) * FA_LN2;
#pragma unroll
            for (int j = 0; j < CJ; ++j) Qs[r * LD + tx + 8 * j] = acc[i][j] * inv;
        }
        __syncthreads();
        fa_store_rows<T, BM>(out + z * L * Ev, Qs, LD, q0, L, Ev, 1.0f);
    }
}

// ------------------------------------------------------------------------------------- backward
// delta[row] = sum_c grad[row, c] * out[row, c], a warp a row.
template <typename T>
__device__ __forceinline__ void fa_backward_dot(const T* __restrict__ grad,
                                                const T* __restrict__ out,
                                                float* __restrict__ delta, long long rows,
                                                int cols) {
    const int lane = threadIdx.x & 31;
    const long long warps = blockDim.x >> 5;
    for (long long row = blockIdx.x * warps + (threadIdx.x >> 5); row < rows;
         row += (long long)gridDim.x * warps) {
        const T* g = grad + row * cols;
        const T* o = out + row * cols;
        float s = 0.0f;
        for (int c = lane; c < cols; c += 32) s = fmaf(fa_load(g + c), fa_load(o + c), s);
#pragma unroll
        for (int off = 16; off >= 1; off >>= 1) s += __shfl_xor_sync(FA_FULL_MASK, s, off);
        if (lane == 0) delta[row] = s;
    }
}

// Scores and probabilities of a (query tile, key tile) pair, in the backward's layout: thread
// (ty, tx) gets rows ty + 16 i and keys tx + 8 j of P and dS = P * (dP - delta).
template <int D, int BM, int BN>
__device__ __forceinline__ void fa_probabilities(float (&p)[BM / 16][BN / 8],
                                                 float (&ds)[BM / 16][BN / 8],
                                                 const float* Qs, const float* dOs, const float* Ks,
                                                 const float* Vs, const float* lse_s,
                                                 const float* delta_s, int q0, int k0, int L, int S,
                                                 int E, int Ev, float scale2, int causal) {
    constexpr int LD = D + 1, RM = BM / 16, RN = BN / 8;
    const int tx = threadIdx.x & 7, ty = threadIdx.x >> 3;
    float dp[RM][RN];
#pragma unroll
    for (int i = 0; i < RM; ++i)
#pragma unroll
        for (int j = 0; j < RN; ++j) p[i][j] = dp[i][j] = 0.0f;
    fa_product(p, Qs + ty * LD, 16 * LD, 1, Ks + tx * LD, 8 * LD, 1, E);     // q k^T
    fa_product(dp, dOs + ty * LD, 16 * LD, 1, Vs + tx * LD, 8 * LD, 1, Ev);  // grad v^T
#pragma unroll
    for (int i = 0; i < RM; ++i) {
        const int r = ty + 16 * i, row = q0 + r;
#pragma unroll
        for (int j = 0; j < RN; ++j) {
            const int key = k0 + tx + 8 * j;
            const bool valid = row < L && key < S && (!causal || key <= row);
            p[i][j] = valid ? exp2f(p[i][j] * scale2 - lse_s[r]) : 0.0f;
            ds[i][j] = p[i][j] * (dp[i][j] - delta_s[r]);
        }
    }
}

// The query tile's rows: q, grad, lse (in log2 units) and delta; rows past L are zeros.
template <typename T, int D, int BM>
__device__ __forceinline__ void fa_load_query_tile(float* Qs, float* dOs, float* lse_s,
                                                   float* delta_s, const T* qz, const T* gz,
                                                   const float* lse_z, const float* delta_z,
                                                   int q0, int L, int E, int Ev) {
    fa_load_rows<T, BM>(Qs, D + 1, qz, q0, L, E);
    fa_load_rows<T, BM>(dOs, D + 1, gz, q0, L, Ev);
    for (int r = threadIdx.x; r < BM; r += FA_THREADS) {
        const bool in = q0 + r < L;
        lse_s[r] = in ? lse_z[q0 + r] * FA_LOG2E : 0.0f;
        delta_s[r] = in ? delta_z[q0 + r] : 0.0f;
    }
}

// dk and dv of one key tile per block: loops over the query tiles that see it.
template <typename T, int D, int BM, int BN>
__device__ __forceinline__ void fa_backward_dkdv(const T* __restrict__ q, const T* __restrict__ k,
                                                 const T* __restrict__ v,
                                                 const T* __restrict__ grad,
                                                 const float* __restrict__ lse,
                                                 const float* __restrict__ delta,
                                                 T* __restrict__ dk, T* __restrict__ dv, int L,
                                                 int S, int E, int Ev, float scale, int causal,
                                                 float* smem) {
    constexpr int LD = D + 1, LP = BN + 1, RM = BM / 16, RN = BN / 8, RK = BN / 16, CJ = D / 8;
    static_assert(BM % 16 == 0 && BN % 16 == 0, "tiles must fill the 16 x 8 thread grid");
    static_assert(2 * BN * LD + 2 * BM * LD + 2 * BM * LP + 2 * BM <= FA_SMEM_FLOATS,
                  "backward dk/dv tiles too large");
    float* Ks = smem;              // BN x LD; at the end the dk staging
    float* Vs = Ks + BN * LD;      // BN x LD; at the end the dv staging
    float* Qs = Vs + BN * LD;      // BM x LD
    float* dOs = Qs + BM * LD;     // BM x LD
    float* Ps = dOs + BM * LD;     // BM x LP
    float* dSs = Ps + BM * LP;     // BM x LP
    float* lse_s = dSs + BM * LP;  // BM
    float* delta_s = lse_s + BM;   // BM
    const int tx = threadIdx.x & 7, ty = threadIdx.x >> 3;
    const long long z = blockIdx.x;
    const T* qz = q + z * L * E;
    const T* kz = k + z * S * E;
    const T* vz = v + z * S * Ev;
    const T* gz = grad + z * L * Ev;
    const float scale2 = scale * FA_LOG2E;
    const int n_k_tiles = (S + BN - 1) / BN, n_q_tiles = (L + BM - 1) / BM;

    for (int kt = blockIdx.y; kt < n_k_tiles; kt += gridDim.y) {
        const int k0 = kt * BN;
        __syncthreads();  // the previous tile's dk/dv staging has been read
        fa_load_rows<T, BN>(Ks, LD, kz, k0, S, E);
        fa_load_rows<T, BN>(Vs, LD, vz, k0, S, Ev);
        // thread (ty, tx) accumulates keys ty + 16 i, columns tx + 8 j
        float dk_acc[RK][CJ], dv_acc[RK][CJ];
#pragma unroll
        for (int i = 0; i < RK; ++i)
#pragma unroll
            for (int j = 0; j < CJ; ++j) dk_acc[i][j] = dv_acc[i][j] = 0.0f;
        // causal: rows before k0 see none of these keys
        for (int qt = causal ? k0 / BM : 0; qt < n_q_tiles; ++qt) {
            const int q0 = qt * BM;
            __syncthreads();  // Qs, dOs, Ps, dSs of the previous query tile have been read
            fa_load_query_tile<T, D, BM>(Qs, dOs, lse_s, delta_s, qz, gz, lse + z * L,
                                         delta + z * L, q0, L, E, Ev);
            __syncthreads();
            float p[RM][RN], ds[RM][RN];
            fa_probabilities<D, BM, BN>(p, ds, Qs, dOs, Ks, Vs, lse_s, delta_s, q0, k0, L, S, E,
                                        Ev, scale2, causal);
#pragma unroll
            for (int i = 0; i < RM; ++i)
#pragma unroll
                for (int j = 0; j < RN; ++j) {
                    Ps[(ty + 16 * i) * LP + tx + 8 * j] = p[i][j];
                    dSs[(ty + 16 * i) * LP + tx + 8 * j] = ds[i][j];
                }
            __syncthreads();
            fa_product(dv_acc, Ps + ty, 16, LP, dOs + tx, 8, LD, BM);   // P^T grad
            fa_product(dk_acc, dSs + ty, 16, LP, Qs + tx, 8, LD, BM);   // dS^T q
        }
        __syncthreads();  // Ks and Vs are free for the staging
#pragma unroll
        for (int i = 0; i < RK; ++i)
#pragma unroll
            for (int j = 0; j < CJ; ++j) {
                Ks[(ty + 16 * i) * LD + tx + 8 * j] = dk_acc[i][j];
                Vs[(ty + 16 * i) * LD + tx + 8 * j] = dv_acc[i][j];
            }
        __syncthreads();
        fa_store_rows<T, BN>(dk + z * S * E, Ks, LD, k0, S, E, scale);
        fa_store_rows<T, BN>(dv + z * S * Ev, Vs, LD, k0, S, Ev, 1.0f);
    }
}

// dq of one query tile per block: loops over the key tiles it sees.
template <typename T, int D, int BM, int BN>
__device__ __forceinline__ void fa_backward_dq(const T* __restrict__ q, const T* __restrict__ k,
                                               const T* __restrict__ v, const T* __restrict__ grad,
                                               const float* __restrict__ lse,
                                               const float* __restrict__ delta, T* __restrict__ dq,
                                               int L, int S, int E, int Ev, float scale, int causal,
                                               float* smem) {
    constexpr int LD = D + 1, LP = BN + 1, RM = BM / 16, RN = BN / 8, CJ = D / 8;
    static_assert(BM % 16 == 0 && BN % 8 == 0, "tiles must fill the 16 x 8 thread grid");
    static_assert(2 * BM * LD + 2 * BN * LD + BM * LP + 2 * BM <= FA_SMEM_FLOATS,
                  "backward dq tiles too large");
    float* Qs = smem;              // BM x LD; at the end the dq staging
    float* dOs = Qs + BM * LD;     // BM x LD
    float* Ks = dOs + BM * LD;     // BN x LD
    float* Vs = Ks + BN * LD;      // BN x LD
    float* dSs = Vs + BN * LD;     // BM x LP
    float* lse_s = dSs + BM * LP;  // BM
    float* delta_s = lse_s + BM;   // BM
    const int tx = threadIdx.x & 7, ty = threadIdx.x >> 3;
    const long long z = blockIdx.x;
    const T* qz = q + z * L * E;
    const T* kz = k + z * S * E;
    const T* vz = v + z * S * Ev;
    const T* gz = grad + z * L * Ev;
    const float scale2 = scale * FA_LOG2E;
    const int n_q_tiles = (L + BM - 1) / BM;

    for (int t = blockIdx.y; t < n_q_tiles; t += gridDim.y) {
        const int q0 = (n_q_tiles - 1 - t) * BM;  // the last (heaviest when causal) tiles first
        __syncthreads();  // the previous tile's dq staging has been read
        fa_load_query_tile<T, D, BM>(Qs, dOs, lse_s, delta_s, qz, gz, lse + z * L, delta + z * L,
                                     q0, L, E, Ev);
        float acc[RM][CJ];  // rows ty + 16 i, columns tx + 8 j
#pragma unroll
        for (int i = 0; i < RM; ++i)
#pragma unroll
            for (int j = 0; j < CJ; ++j) acc[i][j] = 0.0f;
        const int n_k_tiles = fa_key_tiles<BM, BN>(q0, L, S, causal);
        for (int kt = 0; kt < n_k_tiles; ++kt) {
            const int k0 = kt * BN;
            fa_load_rows<T, BN>(Ks, LD, kz, k0, S, E);
            fa_load_rows<T, BN>(Vs, LD, vz, k0, S, Ev);
            __syncthreads();
            float p[RM][RN], ds[RM][RN];
            fa_probabilities<D, BM, BN>(p, ds, Qs, dOs, Ks, Vs, lse_s, delta_s, q0, k0, L, S, E,
                                        Ev, scale2, causal);
#pragma unroll
            for (int i = 0; i < RM; ++i)
#pragma unroll
                for (int j = 0; j < RN; ++j) dSs[(ty + 16 * i) * LP + tx + 8 * j] = ds[i][j];
            __syncthreads();
            fa_product(acc, dSs + ty * LP, 16 * LP, 1, Ks + tx, 8, LD, BN);  // dS k
            __syncthreads();  // Ks, Vs and dSs are free for the next tile
        }
        __syncthreads();  // Qs is free for the staging (also when there was no key tile)
#pragma unroll
        for (int i = 0; i < RM; ++i)
#pragma unroll
            for (int j = 0; j < CJ; ++j) Qs[(ty + 16 * i) * LD + tx + 8 * j] = acc[i][j];
        __syncthreads();
        fa_store_rows<T, BM>(dq + z * L * E, Qs, LD, q0, L, E, scale);
    }
}

// ------------------------------------------------------------------------------------- kernels
// One shared buffer per kernel, carved by the head-dim bucket's instance (separate __shared__
// arrays in each instance would add up). FA_BUCKETS runs CALL(T, D, BM, BN) with the tiles of
// the bucket of max(E, Ev) (the table in the header); over 128 it does nothing.
#define FA_BUCKETS(CALL, T, BM32, BN32, BM64, BN64, BM128, BN128)                                 \
    const int d = max(E, Ev);                                                                     \
    if (d <= 32)                                                                                  \
        CALL(T, 32, BM32, BN32);                                                                  \
    else if (d <= 64)                                                                             \
        CALL(T, 64, BM64, BN64);                                                                  \
    else if (d <= 128)                                                                            \
        CALL(T, 128, BM128, BN128);

#define FA_CALL_FORWARD(T, D, BM, BN)                                                             \
    fa_forward<T, D, BM, BN>(q, k, v, out, lse, L, S, E, Ev, scale, causal, smem)
#define FA_CALL_DKDV(T, D, BM, BN)                                                                \
    fa_backward_dkdv<T, D, BM, BN>(q, k, v, grad, lse, delta, dk, dv, L, S, E, Ev, scale,        \
                                   causal, smem)
#define FA_CALL_DQ(T, D, BM, BN)                                                                  \
    fa_backward_dq<T, D, BM, BN>(q, k, v, grad, lse, delta, dq, L, S, E, Ev, scale, causal, smem)

#define FA_KERNELS(T, SUFFIX)                                                                     \
    extern "C" __global__ void __launch_bounds__(FA_THREADS) flash_attention_forward_##SUFFIX(    \
        const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,                \
        T* __restrict__ out, float* __restrict__ lse, int L, int S, int E, int Ev, float scale,    \
        int causal) {                                                                             \
        __shared__ float smem[FA_SMEM_FLOATS];                                                    \
        FA_BUCKETS(FA_CALL_FORWARD, T, 64, 64, 64, 32, 32, 16)                                    \
    }                                                                                             \
    extern "C" __global__ void __launch_bounds__(1024) flash_attention_backward_dot_##SUFFIX(     \
        const T* __restrict__ grad, const T* __restrict__ out, float* __restrict__ delta,         \
        long long rows, int cols) {                                                               \
        fa_backward_dot<T>(grad, out, delta, rows, cols);                                         \
    }                                                                                             \
    extern "C" __global__ void __launch_bounds__(FA_THREADS)                                      \
    flash_attention_backward_dkdv_##SUFFIX(                                                       \
        const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,                \
        const T* __restrict__ grad, const float* __restrict__ lse,                                \
        const float* __restrict__ delta, T* __restrict__ dk, T* __restrict__ dv, int L, int S,    \
        int E, int Ev, float scale, int causal) {                                                 \
        __shared__ float smem[FA_SMEM_FLOATS];                                                    \
        FA_BUCKETS(FA_CALL_DKDV, T, 32, 64, 32, 32, 16, 16)                                       \
    }                                                                                             \
    extern "C" __global__ void __launch_bounds__(FA_THREADS) flash_attention_backward_dq_##SUFFIX( \
        const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,                \
        const T* __restrict__ grad, const float* __restrict__ lse,                                \
        const float* __restrict__ delta, T* __restrict__ dq, int L, int S, int E, int Ev,         \
        float scale, int causal) {                                                                \
        __shared__ float smem[FA_SMEM_FLOATS];                                                    \
        FA_BUCKETS(FA_CALL_DQ, T, 64, 32, 32, 32, 16, 16)                                         \
    }

FA_KERNELS(float, f32)
FA_KERNELS(__half, f16)
FA_KERNELS(__nv_bfloat16, bf16)
