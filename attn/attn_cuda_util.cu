/* attn/attn_cuda_util.cu — the smaller CUDA kernels of the encoder (block
 * summaries, routed top-k, residual + normalization), the synchronous host
 * helper used by tests, and the kernel benchmark entry.  See attn_cuda.h. */
#include "attn_cuda_internal.h"

#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <mma.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <algorithm>
#include <vector>


namespace {

/* ------------------------------------------------------------ block means */
/* One thread per (block, column): tokens of the block summed in index order. */
__global__ void block_means_kernel(const float *X, int64_t n, int d, int B, float *out)
{
    const int64_t b = blockIdx.x;
    for (int c = threadIdx.x; c < d; c += blockDim.x) {
        const int64_t t0 = b * B, t1 = min(n, t0 + B);
        float s = 0.f;
        for (int64_t t = t0; t < t1; t++) s += X[t * d + c];
        out[b * d + c] = s / (float)(t1 - t0);
    }
}

/* ------------------------------------------------------------ routed top-k
 * A tiled score product, as an SGEMM: a CTA takes 64 query blocks of one
 * head; candidate blocks stream through shared memory in tiles of 64; each
 * of the 256 threads computes a 4 x 4 patch of the 64 x 64 score tile with
 * operands transposed in shared memory (one float4 of queries and one of
 * candidates per 16 FMAs).  Every score is one fmaf chain over the 64
 * dimensions in order, starting from 0 — the CPU's arithmetic, so scores
 * are the same to the bit.  The tile is then scanned by 4 threads per query
 * row (interleaved columns), each keeping a sorted top-KMAX list in
 * registers (descending score, ascending index on ties); the 4 lists of a
 * row merge at the end by the same order, which gives exactly the ordered
 * top-k of all candidates. */
constexpr int kRouteThreads = 256;
constexpr int kRT = 64;        /* query rows and candidates per tile */
constexpr int kSStride = 68;   /* score tile row stride: conflict-free scans */

template <int KMAX>
__device__ __forceinline__ void topk_insert(float (&bs)[KMAX], int32_t (&bi)[KMAX], float sc, int32_t j)
{
    /* candidates reach a list in increasing index, so an equal score never
     * displaces an earlier one */
    if (bi[KMAX - 1] >= 0 && !(sc > bs[KMAX - 1])) return;
    float cs = sc;
    int32_t ci = j;
    bool ins = false;
#pragma unroll
    for (int e = 0; e < KMAX; e++) {
        const bool take = ins || cs > bs[e] || bi[e] < 0;
        ins = take;
        const float ts = bs[e];
        const int32_t ti = bi[e];
        bs[e] = take ? cs : ts;
        bi[e] = take ? ci : ti;
        cs = take ? ts : cs;
        ci = take ? ti : ci;
    }
}

/* Merges the sorted lists of a query row's 4 scan threads (4 consecutive
 * lanes of one warp) into its k best: the heads are compared by shuffles
 * (higher score, then lower index wins; indices differ across lists) and
 * the winner's list shifts up.  Every lane must call it; out (k slots) is
 * written by the caller's chosen lane only (NULL elsewhere).  Returns the
 * number of valid entries. */
template <int KMAX>
__device__ __forceinline__ int merge_row_lists(float (&bs)[KMAX], int32_t (&bi)[KMAX], int k, int32_t *out)
{
    int cnt = 0;
    for (int e = 0; e < k; e++) {
        float bsc = bs[0];
        int32_t bix = bi[0];
#pragma unroll
        for (int off = 1; off < 4; off <<= 1) {
            const float os = __shfl_xor_sync(0xffffffffu, bsc, off);
            const int32_t oi = __shfl_xor_sync(0xffffffffu, bix, off);
            if (oi >= 0 && (bix < 0 || os > bsc || (os == bsc && oi < bix))) {
                bsc = os;
                bix = oi;
            }
        }
        if (bix >= 0 && bi[0] == bix) {
#pragma unroll
            for (int q = 0; q + 1 < KMAX; q++) {
                bs[q] = bs[q + 1];
                bi[q] = bi[q + 1];
            }
            bs[KMAX - 1] = -INFINITY;
            bi[KMAX - 1] = -1;
        }
        if (out) out[e] = bix;
        cnt += bix >= 0;
    }
    return cnt;
}

template <int KMAX>
__global__ void __launch_bounds__(kRouteThreads) route_topk_kernel(const float *node_q, const float *node_k,
                                                                   int64_t ld, int64_t nb, int H,
                                                                   int G, int k, int64_t qb0, int64_t qb1,
                                                                   int32_t *out, int32_t *out_n)
{
    constexpr int D = 64;
    __shared__ __align__(16) float qt[D][kRT];                 /* queries, [dim][row]      */
    __shared__ __align__(16) float kts[kRT * kSStride];        /* candidates [dim][col], then scores [row][col] */
    float (*kt)[kRT] = reinterpret_cast<float (*)[kRT]>(kts);
    const int h = blockIdx.y, t = threadIdx.x;
    const int64_t r0 = qb0 + (int64_t)blockIdx.x * kRT;
    const int nrows = (int)min((int64_t)kRT, qb1 - r0);
    /* load + transpose the query tile (rows past qb1 are zeros, never output) */
    for (int idx = t; idx < kRT * (D / 4); idx += kRouteThreads) {
        const int r = idx % kRT, c4 = idx / kRT;
        float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
        if (r < nrows) v = *reinterpret_cast<const float4 *>(node_q + (r0 + r) * ld + h * D + 4 * c4);
        qt[4 * c4][r] = v.x;
        qt[4 * c4 + 1][r] = v.y;
        qt[4 * c4 + 2][r] = v.z;
        qt[4 * c4 + 3][r] = v.w;
    }
    /* product patch: rows pr..pr+3, columns pc..pc+3 of the tile */
    const int pr = (t / 16) * 4, pc = (t % 16) * 4;
    /* scan role: row sr, columns sq, sq+4, ... */
    const int sr = t / 4, sq = t % 4;
    const int64_t my_qb = r0 + sr;
    const int64_t g0 = sr < nrows ? (my_qb / G) * G : -1, g1 = g0 + G;
    float bs[KMAX];
    int32_t bi[KMAX];
#pragma unroll
    for (int e = 0; e < KMAX; e++) { bs[e] = -INFINITY; bi[e] = -1; }

    for (int64_t j0 = 0; j0 < nb; j0 += kRT) {
        __syncthreads(); /* previous scan done with the score tile */
        for (int idx = t; idx < kRT * (D / 4); idx += kRouteThreads) {
            const int r = idx % kRT, c4 = idx / kRT;
            float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
            if (j0 + r < nb) v = *reinterpret_cast<const float4 *>(node_k + (j0 + r) * ld + h * D + 4 * c4);
            kt[4 * c4][r] = v.x;
            kt[4 * c4 + 1][r] = v.y;
            kt[4 * c4 + 2][r] = v.z;
            kt[4 * c4 + 3][r] = v.w;
        }
        __syncthreads();
        float acc[4][4];
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int j = 0; j < 4; j++) acc[i][j] = 0.f;
#pragma unroll 16
        for (int c = 0; c < D; c++) {
            const float4 a = *reinterpret_cast<const float4 *>(&qt[c][pr]);
            const float4 b = *reinterpret_cast<const float4 *>(&kt[c][pc]);
            const float av[4] = {a.x, a.y, a.z, a.w}, bv[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
        }
        __syncthreads(); /* everyone done reading the candidates */
#pragma unroll
        for (int i = 0; i < 4; i++)
            *reinterpret_cast<float4 *>(&kts[(pr + i) * kSStride + pc]) =
                make_float4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
        __syncthreads();
        if (sr < nrows) {
            const int cn = (int)min((int64_t)kRT, nb - j0);
            for (int u = sq; u < cn; u += 4) {
                const int64_t j = j0 + u;
                if (j >= g0 && j < g1) continue; /* own group: covered by the hierarchy */
                topk_insert<KMAX>(bs, bi, kts[sr * kSStride + u], (int32_t)j);
            }
        }
    }
    /* Merge the 4 lists of each row: its 4 scan threads are 4 consecutive
     * lanes of one warp, so the head of every list is compared by shuffles
     * (higher score, then lower index wins; indices differ across lists)
     * and the winner's list shifts up.  Every lane takes part. */
    const int64_t row = ((my_qb - qb0) * H + h) * (int64_t)k;
    const int cnt = merge_row_lists<KMAX>(bs, bi, k, sq == 0 && sr < nrows ? out + row : nullptr);
    if (sq != 0 || sr >= nrows) return;
    out_n[(my_qb - qb0) * H + h] = cnt;
}

/* ------------------------------------------------------------ routed top-k on tensor cores
 * The same exact selection as route_topk_kernel, with the score tile first
 * computed from bf16 copies on the tensor cores (wmma 16x16x16, fp32
 * accumulation).  That approximate score s' differs from the exact fp32
 * fmaf chain s by at most kRouteEps * |q| * |k| (bf16 rounding of both
 * operands: 2^-7 relative per product, bounded by |q| |k| through
 * Cauchy-Schwarz; plus fp32 accumulation, < 2e-5), so a candidate whose
 * upper bound s' + eps cannot beat a thread's current k-th exact score is
 * one the exact kernel would reject too; every other candidate is scored
 * exactly (the fmaf chain, from the fp32 rows) and goes through the same
 * insertion.  The result is therefore identical to the fp32 kernel's, ties
 * included, while only ~k log(nb/k) candidates per row need the fp32 chain. */
constexpr float kRouteEps = 0.0085f;
constexpr int kBStride = 72; /* bf16 tile row stride (16-byte multiple, fewer conflicts) */

/* bf16 copy (H, nbp, 64) head-major, so a tile of 64 candidates is one
 * contiguous 8 KB run, and the fp32 norm (H, nbp) of every row's head
 * slice; one warp a (row, head).  SWZ (the wgmma kernel's layout): each
 * head padded to nbp (a multiple of 64) rows, zeros, and every 64-row tile
 * stored in the 128-byte swizzle (16-byte chunk c of row r at r * 128 +
 * ((c ^ (r & 7)) << 4) bytes), so that one linear copy of a tile lands in
 * shared memory as the wgmma reads it.  Else nbp == nb, rows as they are. */
template <bool SWZ>
__global__ void route_prep_kernel(const float *node, int64_t ld, int64_t nb, int64_t nbp, int H,
                                  __nv_bfloat16 *nb16, float *norm)
{
    const int64_t i = blockIdx.x * (int64_t)(blockDim.x / 32) + threadIdx.x / 32; /* (j, h) row */
    const int lane = threadIdx.x & 31;
    if (i >= nbp * H) return;
    const int64_t j = i / H;
    const int h = (int)(i % H);
    const bool live = !SWZ || j < nb;
    const float a = live ? node[j * ld + h * 64 + lane] : 0.f, b = live ? node[j * ld + h * 64 + 32 + lane] : 0.f;
    __nv_bfloat16 *row = nb16 + ((int64_t)h * nbp + j) * 64;
    if constexpr (SWZ) {
        const int sw = (int)(j & 7), c0 = lane >> 3, e = lane & 7; /* chunks c0 and c0 + 4 */
        row[((c0 ^ sw) << 3) + e] = __float2bfloat16_rn(a);
        row[(((c0 + 4) ^ sw) << 3) + e] = __float2bfloat16_rn(b);
    } else {
        row[lane] = __float2bfloat16_rn(a);
        row[32 + lane] = __float2bfloat16_rn(b);
    }
    float ss = a * a + b * b;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    if (lane == 0) norm[(int64_t)h * nbp + j] = sqrtf(ss);
}

/* Exact score: the fmaf chain over the 64 dimensions in order, from 0. */
__device__ __forceinline__ float exact_score(const float *q, const float *k)
{
    float s = 0.f;
#pragma unroll
    for (int c4 = 0; c4 < 16; c4++) {
        const float4 a = __ldg(reinterpret_cast<const float4 *>(q) + c4);
        const float4 b = __ldg(reinterpret_cast<const float4 *>(k) + c4);
        s = fmaf(a.x, b.x, s);
        s = fmaf(a.y, b.y, s);
        s = fmaf(a.z, b.z, s);
        s = fmaf(a.w, b.w, s);
    }
    return s;
}

template <int KMAX>
__global__ void __launch_bounds__(kRouteThreads, 3) route_topk_tc_kernel(
    const float *node_q, const float *node_k, int64_t ld, int64_t nb, int H, int G, int k, int64_t qb0, int64_t qb1,
    const __nv_bfloat16 *q16, const float *qnorm, const __nv_bfloat16 *k16, const float *knorm, int32_t *out,
    int32_t *out_n)
{
    using namespace nvcuda;
    constexpr int D = 64;
    __shared__ __align__(128) __nv_bfloat16 qs[kRT * kBStride];
    __shared__ __align__(128) __nv_bfloat16 ks[kRT * kBStride];
    __shared__ __align__(128) float sc[kRT * kSStride];
    __shared__ float kn[kRT];
    const int h = blockIdx.y, t = threadIdx.x, warp = t / 32;
    const int64_t r0 = qb0 + (int64_t)blockIdx.x * kRT;
    const int nrows = (int)min((int64_t)kRT, qb1 - r0);
    /* query tile, bf16 (rows past qb1 are zeros, never output) */
    for (int idx = t; idx < kRT * (D / 8); idx += kRouteThreads) {
        const int r = idx / (D / 8), c8 = idx % (D / 8);
        uint4 v = make_uint4(0, 0, 0, 0);
        if (r < nrows) v = *reinterpret_cast<const uint4 *>(q16 + ((int64_t)h * nb + r0 + r) * D + 8 * c8);
        *reinterpret_cast<uint4 *>(qs + r * kBStride + 8 * c8) = v;
    }
    const int sr = t / 4, sq = t % 4;
    const int64_t my_qb = r0 + sr;
    const bool live = sr < nrows;
    const int64_t g0 = live ? (my_qb / G) * G : -1, g1 = g0 + G;
    const float qn = live ? qnorm[(int64_t)h * nb + my_qb] * kRouteEps : 0.f;
    const float *qrow = node_q + (live ? my_qb : 0) * ld + h * D;
    float bs[KMAX];
    int32_t bi[KMAX];
#pragma unroll
    for (int e = 0; e < KMAX; e++) { bs[e] = -INFINITY; bi[e] = -1; }
    /* warp w computes output fragments (w / 2, 2 (w % 2)) and (w / 2, 2 (w % 2) + 1) */
    const int fm = warp / 2, fn0 = 2 * (warp % 2);

    /* Two sweeps over the candidates.  Sweep 0 keeps, per thread, the KMAX
     * largest LOWER bounds s' - eps of its candidates; their merge gives T,
     * the row's k-th largest lower bound: k candidates score at least T, so
     * the exact k-th best is >= T and no candidate whose upper bound s' + eps
     * is below T can be selected.  Sweep 1 scores exactly only candidates
     * with upper bound >= T (~k plus the few within 2 eps of the boundary). */
    /* The candidate tiles of both sweeps form one stream, and the next
     * tile's loads are issued before this tile's products and scan, so the
     * L2 latency hides behind the work (registers, then shared memory). */
    float T = -INFINITY;
    const int64_t ntile = (nb + kRT - 1) / kRT;
    uint4 pv[2];
    float pk = 0.f;
#define ROUTE_FETCH(IT)                                                                                      \
    do {                                                                                                     \
        const int64_t fj0 = ((IT) % ntile) * kRT;                                                            \
        const int fcn = (int)min((int64_t)kRT, nb - fj0);                                                    \
        for (int i = 0; i < 2; i++) {                                                                        \
            const int idx = t + i * kRouteThreads, r = idx / (D / 8), c8 = idx % (D / 8);                    \
            pv[i] = r < fcn ? *reinterpret_cast<const uint4 *>(k16 + ((int64_t)h * nb + fj0 + r) * D + 8 * c8) \
                            : make_uint4(0, 0, 0, 0);                                                        \
        }                                                                                                    \
        pk = t < fcn ? knorm[(int64_t)h * nb + fj0 + t] : 0.f;                                               \
    } while (0)
    static_assert(kRT * (D / 8) == 2 * kRouteThreads, "two 16-byte chunks per thread and tile");
    ROUTE_FETCH(0);
    for (int64_t it = 0; it < 2 * ntile; it++) {
        const int sweep = it < ntile ? 0 : 1;
        const int64_t j0 = (it % ntile) * kRT;
        const int cn = (int)min((int64_t)kRT, nb - j0);
        if (it == ntile) { /* sweep 0 done */
            /* T = the k-th largest of the row's 4 lists (ties between lanes
             * go to the lower lane, so one value leaves per step) */
            for (int e = 0; e < k; e++) {
                float bv = bs[0];
                int bl = sq;
#pragma unroll
                for (int off = 1; off < 4; off <<= 1) {
                    const float ov = __shfl_xor_sync(0xffffffffu, bv, off);
                    const int ol = __shfl_xor_sync(0xffffffffu, bl, off);
                    if (ov > bv || (ov == bv && ol < bl)) {
                        bv = ov;
                        bl = ol;
                    }
                }
                if (bl == sq) {
#pragma unroll
                    for (int q = 0; q + 1 < KMAX; q++) bs[q] = bs[q + 1];
                    bs[KMAX - 1] = -INFINITY;
                }
                T = bv;
            }
#pragma unroll
            for (int e = 0; e < KMAX; e++) bs[e] = -INFINITY;
        }
        __syncthreads(); /* the previous tile's products and scan are done */
        for (int i = 0; i < 2; i++) {
            const int idx = t + i * kRouteThreads, r = idx / (D / 8), c8 = idx % (D / 8);
            *reinterpret_cast<uint4 *>(ks + r * kBStride + 8 * c8) = pv[i];
        }
        if (t < kRT) kn[t] = pk;
        __syncthreads();
        if (it + 1 < 2 * ntile) ROUTE_FETCH(it + 1);
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2];
        wmma::fill_fragment(acc[0], 0.f);
        wmma::fill_fragment(acc[1], 0.f);
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> a;
            wmma::load_matrix_sync(a, qs + fm * 16 * kBStride + kk * 16, kBStride);
#pragma unroll
            for (int f = 0; f < 2; f++) {
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> b;
                wmma::load_matrix_sync(b, ks + (fn0 + f) * 16 * kBStride + kk * 16, kBStride);
                wmma::mma_sync(acc[f], a, b, acc[f]);
            }
        }
#pragma unroll
        for (int f = 0; f < 2; f++)
            wmma::store_matrix_sync(sc + fm * 16 * kSStride + (fn0 + f) * 16, acc[f], kSStride,
                                    wmma::mem_row_major);
        __syncthreads();
        if (!live) continue;
        /* This thread's 16 contiguous columns of the tile (index order is
         * kept within a thread's list); the own group and the padding
         * become an index window test. */
        const int c0 = 16 * sq;
        const int ulo = (int)max((int64_t)0, min((int64_t)kRT, g0 - j0));
        const int uhi = (int)max((int64_t)0, min((int64_t)kRT, g1 - j0));
#pragma unroll
        for (int i4 = 0; i4 < 4; i4++) {
            const float4 a4 = *reinterpret_cast<const float4 *>(&sc[sr * kSStride + c0 + 4 * i4]);
            const float4 b4 = *reinterpret_cast<const float4 *>(&kn[c0 + 4 * i4]);
            const float v[4] = {a4.x, a4.y, a4.z, a4.w};
            const float e[4] = {qn * b4.x, qn * b4.y, qn * b4.z, qn * b4.w};
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int u = c0 + 4 * i4 + i;
                const bool ok = u < cn && (u < ulo || u >= uhi);
                if (sweep == 0) {
                    const float lower = ok ? v[i] - e[i] : -INFINITY;
                    if (!(lower > bs[KMAX - 1])) continue;
                    float cv = lower; /* sorted insert, values only */
#pragma unroll
                    for (int q = 0; q < KMAX; q++) {
                        const float o = bs[q];
                        const bool take = cv > o;
                        bs[q] = take ? cv : o;
                        cv = take ? o : cv;
                    }
                } else {
                    const float upper = v[i] + e[i];
                    if (!ok || upper < T) continue;                          /* cannot be selected */
                    if (bi[KMAX - 1] >= 0 && upper < bs[KMAX - 1]) continue; /* cannot enter this list */
                    const int64_t j = j0 + u;
                    topk_insert<KMAX>(bs, bi, exact_score(qrow, node_k + j * ld + h * D), (int32_t)j);
                }
            }
        }
    }
#undef ROUTE_FETCH
    /* Merge the 4 lists of each row, as route_topk_kernel. */
    const int64_t row = ((my_qb - qb0) * H + h) * (int64_t)k;
    const int cnt = merge_row_lists<KMAX>(bs, bi, k, sq == 0 && live ? out + row : nullptr);
    if (sq != 0 || !live) return;
    out_n[(my_qb - qb0) * H + h] = cnt;
}

/* ------------------------------------------------------------ routed top-k, mma.sync, scores in registers
 * The same exact selection again (in use for k <= 8 where the wgmma kernel
 * below is not: builds without sm_90a code, GPUs other than 9.0), shaped after where
 * route_topk_tc_kernel spends its time: it was issue-bound on moving every
 * score through shared memory (store, barrier, reload) and on a per-element
 * insertion test.  Here a CTA of FOLIO_ROUTE_WARPS warps (2: 64 query rows)
 * takes 32 rows a warp; each warp keeps its 32 rows' bf16 fragments in registers
 * for the whole scan and computes 32 x 64 score tiles with
 * mma.sync.m16n8k16 (fp32 accumulation), the candidate tiles arriving
 * through a 3-stage cp.async ring; every score stays in the accumulator
 * registers where it was produced.  Per row and tile a lane first reduces
 * its 16 bounds to one maximum (one FMA and one max per score) and looks at
 * single candidates only when that maximum can change its list — rare once
 * the lists fill.  The two sweeps and the bound are those of
 * route_topk_tc_kernel (lower bounds first, giving T; then exact fp32
 * scoring of the candidates whose upper bound reaches T), so the selection
 * is the fp32 kernel's to the bit, ties included.
 *
 * Fragment layout (PTX ISA, mma.m16n8k16 with .bf16): lane L holds rows
 * L/4 and L/4 + 8 of a 16-row tile and columns 2 (L % 4) + {0, 1} of each
 * 8-column fragment; the 4 lanes of a quad therefore see one row's columns
 * interleaved, each in increasing index order, and their 4 lists merge at
 * the end as in the other kernels. */
/* 2 warps a CTA: 3-8 % faster than 4 at 1-2M tokens, 1-3 % at 10M (the
 * tile barrier waits on fewer warps, more CTAs an SM; 2x H200, seventh
 * session, GPU_NOTES.md) */
#ifndef FOLIO_ROUTE_WARPS
#define FOLIO_ROUTE_WARPS 2
#endif
constexpr int kMmaWarps = FOLIO_ROUTE_WARPS;
constexpr int kMmaRows = kMmaWarps * 32; /* query rows per CTA */
constexpr int kMmaThreads = kMmaWarps * 32;
constexpr int kMmaStages = 3;
/* (Sweep 0 over every 2nd, 4th or 8th tile only -- a looser but still
 * exact T -- was measured in the eighth session: slower below ~5M tokens,
 * the exact scoring of the extra candidates costing more than the half
 * sweep saved; removed.  bench/RESULTS.md, "eighth session".) */
constexpr int kMmaKS = 72; /* bf16 stride of a candidate row: ldmatrix rows 16 bytes apart in the banks */

struct RouteMmaTile {
    __nv_bfloat16 k[64 * kMmaKS];
    float n[64];
};

/* cp.async, ldmatrix and mma.sync wrappers: attn_cuda_internal.h */

/* Per-warp queue of sweep 1's candidates (in the order each lane's list must
 * see them), scored exactly by all 32 lanes at once when it fills. */
constexpr int kMmaQCap = 64;
/* Streams every candidate tile of head h through the ring and hands each
 * 32 x 64 score tile (in the accumulators) to scan(acc, kv, j0). */
template <typename Scan>
__device__ __forceinline__ void route_mma_stream(RouteMmaTile *tiles, const __nv_bfloat16 *kh, const float *knh,
                                                 int64_t nb, const uint32_t (&a)[2][4][4], Scan &&scan)
{
    const int t = threadIdx.x, lane = t & 31, q4 = lane & 3;
    const int64_t ntile = (nb + 63) / 64;
    auto load = [&](int64_t it, int stage) {
        RouteMmaTile &tl = tiles[stage];
        const int64_t j0 = it * 64;
#pragma unroll
        for (int i = 0; i < 64 * 8 / kMmaThreads; i++) {
            const int idx = t + i * kMmaThreads, r = idx / 8, c8 = idx % 8;
            const bool p = j0 + r < nb;
            cp_async16(&tl.k[r * kMmaKS + 8 * c8], kh + (p ? j0 + r : 0) * 64 + 8 * c8, p);
        }
        if (t < 64) cp_async4(&tl.n[t], knh + (j0 + t < nb ? j0 + t : 0), j0 + t < nb);
    };
    static_assert(64 * 8 % kMmaThreads == 0, "whole 16-byte chunks per thread and tile");
    load(0, 0);
    cp_async_commit();
    if (ntile > 1) load(1, 1);
    cp_async_commit();
    int stage = 0; /* = it % kMmaStages */
    for (int64_t it = 0; it < ntile; it++) {
        cp_async_wait<1>(); /* tile it has landed (it + 1 may still be in flight) */
        __syncthreads();    /* ... for every thread; and every warp is done with tile it - 1 */
        if (it + 2 < ntile) load(it + 2, stage == 0 ? kMmaStages - 1 : stage - 1); /* the slot of tile it - 1 */
        cp_async_commit();
        const RouteMmaTile &tl = tiles[stage];
        stage = stage + 1 == kMmaStages ? 0 : stage + 1;
        float acc[2][8][4];
#pragma unroll
        for (int mt = 0; mt < 2; mt++)
#pragma unroll
            for (int nf = 0; nf < 8; nf++)
#pragma unroll
                for (int c = 0; c < 4; c++) acc[mt][nf][c] = 0.f;
#pragma unroll
        for (int p = 0; p < 2; p++) {
            /* matrices m = 0..3 of b[nf]: candidates 8 nf .. 8 nf + 7, dimensions 32 p + 8 m .. + 7 */
            uint32_t b[8][4];
#pragma unroll
            for (int nf = 0; nf < 8; nf++)
                ldmatrix_x4(b[nf][0], b[nf][1], b[nf][2], b[nf][3],
                            smem_u32(&tl.k[(nf * 8 + (lane & 7)) * kMmaKS + 32 * p + 8 * (lane >> 3)]));
            /* 16 independent accumulators between two products into the same one */
#pragma unroll
            for (int kk = 0; kk < 2; kk++)
#pragma unroll
                for (int nf = 0; nf < 8; nf++)
#pragma unroll
                    for (int mt = 0; mt < 2; mt++)
                        mma_bf16(acc[mt][nf], a[mt][2 * p + kk][0], a[mt][2 * p + kk][1], a[mt][2 * p + kk][2],
                                 a[mt][2 * p + kk][3], b[nf][2 * kk], b[nf][2 * kk + 1]);
        }
        float2 kv[8];
#pragma unroll
        for (int nf = 0; nf < 8; nf++) kv[nf] = *reinterpret_cast<const float2 *>(&tl.n[nf * 8 + 2 * q4]);
        scan(acc, kv, (int)(it * 64));
    }
    cp_async_wait<0>();
    __syncthreads(); /* the ring is free for the next sweep */
}

/* ---- The per-lane parts of the two-sweep selection, shared by the
 * mma.sync and the wgmma kernels.  A lane owns R query rows (row r at
 * rbase + 16 (r >> 1) + 8 (r & 1) + lane / 4) and, of each 64-candidate
 * tile, the 16 columns 8 nf + 2 (lane % 4) + c of every row: the
 * accumulator layout of both instructions.  score(r, nf, c) reads the
 * tile's raw bf16 dot product there; kv[nf] are the columns' key norms. */

/* Sweep 0, one tile: each of the 16 slots keeps the running maximum of the
 * lower bound s' - eps of its candidates (own group and padding out). */
template <int R, int SLOTS, typename Score>
__device__ __forceinline__ void route_bound_tile(float (&bk)[R][SLOTS], const float (&qn)[R], const int (&g0)[R], int G,
                                                 int nbi, int q4, const float2 (&kv)[8], int j0, Score &&score)
{
#pragma unroll
    for (int r = 0; r < R; r++) {
        const int g1 = g0[r] + G;
        /* a tile with padding or with the row's own group masks per candidate */
        const bool clean = j0 + 64 <= nbi && (j0 >= g1 || j0 + 64 <= g0[r]);
        if (clean) {
#pragma unroll
            for (int nf = 0; nf < 8; nf++) {
                float &b0 = bk[r][(2 * nf) % SLOTS], &b1 = bk[r][(2 * nf + 1) % SLOTS];
                b0 = fmaxf(b0, fmaf(-qn[r], kv[nf].x, score(r, nf, 0)));
                b1 = fmaxf(b1, fmaf(-qn[r], kv[nf].y, score(r, nf, 1)));
            }
        } else {
#pragma unroll
            for (int nf = 0; nf < 8; nf++)
#pragma unroll
                for (int c = 0; c < 2; c++) {
                    const int j = j0 + nf * 8 + 2 * q4 + c;
                    const bool ok = j < nbi && (j < g0[r] || j >= g1);
                    const float lo = fmaf(-qn[r], c ? kv[nf].y : kv[nf].x, score(r, nf, c));
                    float &bb = bk[r][(2 * nf + c) % SLOTS];
                    bb = fmaxf(bb, ok ? lo : -INFINITY);
                }
        }
    }
}

/* After sweep 0: T[r] = the k-th largest of the quad's 4 x SLOTS maxima of
 * row r (one value leaves per step: the lowest lane holding the quad's
 * maximum, its first slot holding it); rows past the range get INFINITY
 * and never look at a candidate. */
template <int R, int SLOTS>
__device__ __forceinline__ void route_cut(float (&bk)[R][SLOTS], const bool (&live)[R], int k, int lane,
                                          float (&T)[R])
{
    const int q4 = lane & 3;
#pragma unroll
    for (int r = 0; r < R; r++) {
        float tv = -INFINITY;
        for (int e = 0; e < k; e++) {
            float lm = bk[r][0];
#pragma unroll
            for (int s2 = 1; s2 < SLOTS; s2++) lm = fmaxf(lm, bk[r][s2]);
            float qm = fmaxf(lm, __shfl_xor_sync(0xffffffffu, lm, 1));
            qm = fmaxf(qm, __shfl_xor_sync(0xffffffffu, qm, 2));
            const unsigned quad = (__ballot_sync(0xffffffffu, lm == qm) >> (lane & ~3)) & 0xfu;
            if (quad && (unsigned)__ffs(quad) - 1 == (unsigned)q4) {
                bool done = false;
#pragma unroll
                for (int s2 = 0; s2 < SLOTS; s2++) {
                    const bool hit = !done && bk[r][s2] == qm;
                    bk[r][s2] = hit ? -INFINITY : bk[r][s2];
                    done = done || hit;
                }
            }
            tv = qm;
        }
        T[r] = live[r] ? tv : INFINITY;
    }
}

/* Each warp's queue of sweep 1's candidates (in the order each lane's list
 * must see them), scored exactly by all 32 lanes at once when it fills;
 * warp w uses row w of the arrays and the count of its entries, qcount[w]
 * (a separate shared array: the kernels' code stays as before the sharing). */
template <int WARPS> struct RouteQueues {
    int32_t j[WARPS][kMmaQCap];
    float sc[WARPS][kMmaQCap];
    uint8_t meta[WARPS][kMmaQCap]; /* 32 r + lane of the owning list */
};

/* Scores the queued candidates (all lanes) and inserts each into its
 * owner's list, in queue order. */
template <int R, int KMAX, int WARPS>
__device__ __forceinline__ void route_flush(float (&bs)[R][KMAX], int32_t (&bi)[R][KMAX], RouteQueues<WARPS> &q,
                                            int (&qcount)[WARPS], int warp, int lane, int64_t rbase, const float *node_q,
                                            const float *node_k, int64_t ld, int h)
{
    __syncwarp();
    const int n = qcount[warp];
    for (int e = lane; e < n; e += 32) {
        const int m = q.meta[warp][e], r = m >> 5, ow = m & 31;
        const int64_t row = rbase + 16 * (r >> 1) + 8 * (r & 1) + ow / 4;
        q.sc[warp][e] = exact_score(node_q + row * ld + h * 64, node_k + (int64_t)q.j[warp][e] * ld + h * 64);
    }
    __syncwarp();
    for (int e = 0; e < n; e++) {
        const int m = q.meta[warp][e];
        if ((m & 31) != lane) continue;
        const float sc = q.sc[warp][e];
        const int32_t j = q.j[warp][e];
        static_assert(R == 2 || R == 4, "2 or 4 rows a lane");
        if constexpr (R == 4) {
            switch (m >> 5) {
            case 0: topk_insert<KMAX>(bs[0], bi[0], sc, j); break;
            case 1: topk_insert<KMAX>(bs[1], bi[1], sc, j); break;
            case 2: topk_insert<KMAX>(bs[2], bi[2], sc, j); break;
            default: topk_insert<KMAX>(bs[3], bi[3], sc, j); break;
            }
        } else {
            if (m >> 5) topk_insert<KMAX>(bs[1], bi[1], sc, j);
            else topk_insert<KMAX>(bs[0], bi[0], sc, j);
        }
    }
    __syncwarp();
    if (lane == 0) qcount[warp] = 0;
    __syncwarp();
}

/* Sweep 1, one tile: the candidates whose upper bound s' + eps reaches T
 * and the row's current k-th exact score go into the warp's queue
 * (flush(): scores and inserts them when it is full).  A row whose 16
 * bounds all miss costs one FMA and one max per score. */
template <int R, int KMAX, int WARPS, typename Score, typename Flush>
__device__ __forceinline__ void route_offer_tile(const float (&bs)[R][KMAX], const int32_t (&bi)[R][KMAX],
                                                 const float (&qn)[R], const float (&T)[R], const int (&g0)[R], int G,
                                                 int nbi, int lane, const float2 (&kv)[8], int j0,
                                                 RouteQueues<WARPS> &q, int (&qcount)[WARPS], int warp, Score &&score,
                                                 Flush &&flush)
{
    const int q4 = lane & 3;
#pragma unroll
    for (int r = 0; r < R; r++) {
        float up[16];
#pragma unroll
        for (int nf = 0; nf < 8; nf++) {
            up[2 * nf] = fmaf(qn[r], kv[nf].x, score(r, nf, 0));
            up[2 * nf + 1] = fmaf(qn[r], kv[nf].y, score(r, nf, 1));
        }
        float mx[8]; /* a tree, not a chain of 16 dependent maxima */
#pragma unroll
        for (int i = 0; i < 8; i++) mx[i] = fmaxf(up[i], up[i + 8]);
#pragma unroll
        for (int i = 0; i < 4; i++) mx[i] = fmaxf(mx[i], mx[i + 4]);
        const float m = fmaxf(fmaxf(mx[0], mx[2]), fmaxf(mx[1], mx[3]));
        const float lmin = bi[r][KMAX - 1] >= 0 ? bs[r][KMAX - 1] : -INFINITY;
        const bool trig = m >= T[r] && !(m < lmin);
        if (!__any_sync(0xffffffffu, trig)) continue;
        /* slots that may enter the list (its state as of now: the queue
         * only ever makes lists stricter, and insertion re-checks) */
        unsigned pass = 0;
        if (trig) {
            const int g1 = g0[r] + G;
#pragma unroll
            for (int s2 = 0; s2 < 16; s2++) {
                const int j = j0 + (s2 >> 1) * 8 + 2 * q4 + (s2 & 1);
                const bool ok = j < nbi && (j < g0[r] || j >= g1) && up[s2] >= T[r] && !(up[s2] < lmin);
                pass |= ok ? 1u << s2 : 0u;
            }
        }
        /* append, lowest slot first, lanes in order: each list's
         * candidates stay in increasing index */
        while (__any_sync(0xffffffffu, pass != 0)) {
            if (qcount[warp] + 32 > kMmaQCap) flush();
            const bool has = pass != 0;
            const unsigned bal = __ballot_sync(0xffffffffu, has);
            if (has) {
                const int s2 = __ffs(pass) - 1;
                pass &= pass - 1;
                const int pos = qcount[warp] + __popc(bal & ((1u << lane) - 1u));
                q.j[warp][pos] = j0 + (s2 >> 1) * 8 + 2 * q4 + (s2 & 1);
                q.meta[warp][pos] = (uint8_t)(32 * r + lane);
            }
            __syncwarp();
            if (lane == 0) qcount[warp] += __popc(bal);
            __syncwarp();
        }
    }
}

/* Every row's sorted (score, index) list empty. */
template <int R, int KMAX>
__device__ __forceinline__ void route_rows_clear(float (&bs)[R][KMAX], int32_t (&bi)[R][KMAX])
{
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int e = 0; e < KMAX; e++) { bs[r][e] = -INFINITY; bi[r][e] = -1; }
}

/* The merged top-k of each row to out / out_n (quad lane 0 writes). */
template <int R, int KMAX>
__device__ __forceinline__ void route_rows_out(float (&bs)[R][KMAX], int32_t (&bi)[R][KMAX], const bool (&live)[R],
                                               int lane, int64_t rbase, int64_t qb0, int H, int h, int k,
                                               int32_t *out, int32_t *out_n)
{
#pragma unroll
    for (int r = 0; r < R; r++) {
        const int64_t row = rbase + 16 * (r >> 1) + 8 * (r & 1) + lane / 4;
        int32_t *o = (lane & 3) == 0 && live[r] ? out + ((row - qb0) * H + h) * (int64_t)k : nullptr;
        const int cnt = merge_row_lists<KMAX>(bs[r], bi[r], k, o);
        if (o) out_n[(row - qb0) * H + h] = cnt;
    }
}

template <int KMAX>
__global__ void __launch_bounds__(kMmaThreads, 1) route_topk_mma_kernel(
    const float *node_q, const float *node_k, int64_t ld, int64_t nb, int H, int G, int k, int64_t qb0, int64_t qb1,
    const __nv_bfloat16 *q16, const float *qnorm, const __nv_bfloat16 *k16, const float *knorm, int32_t *out,
    int32_t *out_n)
{
    __shared__ __align__(128) RouteMmaTile tiles[kMmaStages];
    __shared__ RouteQueues<kMmaWarps> que;
    __shared__ int qcount[kMmaWarps];
    const int h = blockIdx.y, lane = threadIdx.x & 31, warp = threadIdx.x / 32, q4 = lane & 3;
    const int64_t rbase = qb0 + (int64_t)blockIdx.x * kMmaRows + warp * 32;
    const int nbi = (int)nb;
    /* this lane's 4 rows: r = 2 mt + hf -> rbase + 16 mt + 8 hf + lane / 4 */
    bool live[4];
    int g0[4];
    float qn[4], T[4];
#pragma unroll
    for (int r = 0; r < 4; r++) {
        const int64_t row = rbase + 16 * (r >> 1) + 8 * (r & 1) + lane / 4;
        live[r] = row < qb1;
        g0[r] = live[r] ? (int)((row / G) * G) : -1;
        qn[r] = live[r] ? qnorm[(int64_t)h * nb + row] * kRouteEps : 0.f;
    }
    /* A fragments of the warp's 32 rows, all 64 dimensions (rows past qb1: zeros) */
    uint32_t a[2][4][4];
#pragma unroll
    for (int mt = 0; mt < 2; mt++) {
        const int r0 = 2 * mt, r1 = 2 * mt + 1;
        const int64_t row0 = rbase + 16 * mt + lane / 4, row1 = row0 + 8;
        const uint32_t *p0 = reinterpret_cast<const uint32_t *>(q16 + ((int64_t)h * nb + (live[r0] ? row0 : 0)) * 64);
        const uint32_t *p1 = reinterpret_cast<const uint32_t *>(q16 + ((int64_t)h * nb + (live[r1] ? row1 : 0)) * 64);
#pragma unroll
        for (int ks = 0; ks < 4; ks++) {
            a[mt][ks][0] = live[r0] ? p0[ks * 8 + q4] : 0u;
            a[mt][ks][1] = live[r1] ? p1[ks * 8 + q4] : 0u;
            a[mt][ks][2] = live[r0] ? p0[ks * 8 + 4 + q4] : 0u;
            a[mt][ks][3] = live[r1] ? p1[ks * 8 + 4 + q4] : 0u;
        }
    }
    const __nv_bfloat16 *kh = k16 + (int64_t)h * nb * 64;
    const float *knh = knorm + (int64_t)h * nb;

    /* Sweep 0: T.  Instead of sorted lists (whose insertions made a warp
     * branch on almost every tile: one of its 128 lists nearly always
     * changes), each lane keeps for each row 16 running maxima of the lower
     * bound s' - eps, one per candidate slot of its fragment: one FMA and one
     * max per score, no branch.  The 64 maxima of a row (4 lanes) are lower
     * bounds of 64 distinct candidates, so their k-th largest, T, is at most
     * the row's k-th best exact score; it is nearly the k-th largest lower
     * bound itself, since the row's top k rarely share a slot. */
    {
        /* maxima per row and lane: 16 = one per slot, 8 = slot pairs (fewer registers, looser T) */
#ifndef FOLIO_ROUTE_SLOTS
#define FOLIO_ROUTE_SLOTS 16
#endif
        constexpr int kRouteSlots = FOLIO_ROUTE_SLOTS;
        float bk[4][kRouteSlots];
#pragma unroll
        for (int r = 0; r < 4; r++)
#pragma unroll
            for (int s2 = 0; s2 < kRouteSlots; s2++) bk[r][s2] = -INFINITY;
        route_mma_stream(tiles, kh, knh, nb, a, [&](const float (&acc)[2][8][4], const float2 (&kv)[8], int j0) {
            route_bound_tile<4, kRouteSlots>(bk, qn, g0, G, nbi, q4, kv, j0, [&](int r, int nf, int c) {
                return acc[r >> 1][nf][2 * (r & 1) + c];
            });
        });
        route_cut<4, kRouteSlots>(bk, live, k, lane, T);
    }

    /* Sweep 1: exact fp32 scores of the candidates whose upper bound
     * s' + eps reaches T, into sorted (score, index) lists.  A row whose 16
     * bounds (per lane) all miss costs one FMA and one max per score.
     * Candidates that pass go, per warp, into a queue in the order their
     * lane's list must see them (tile, then slot: increasing index); when it
     * fills (and at the end) the 32 lanes score 32 queued candidates at once
     * and the owners insert them in queue order.  Scoring in the scan loop
     * instead ran one lane's 64-term chain at a time and left the warp idle. */
    float bs[4][KMAX];
    int32_t bi[4][KMAX];
    route_rows_clear<4, KMAX>(bs, bi);
    if (lane == 0) qcount[warp] = 0;
    __syncwarp();
    auto flush = [&]() { route_flush<4, KMAX>(bs, bi, que, qcount, warp, lane, rbase, node_q, node_k, ld, h); };
    route_mma_stream(tiles, kh, knh, nb, a, [&](const float (&acc)[2][8][4], const float2 (&kv)[8], int j0) {
        route_offer_tile<4, KMAX>(bs, bi, qn, T, g0, G, nbi, lane, kv, j0, que, qcount, warp, [&](int r, int nf, int c) {
            return acc[r >> 1][nf][2 * (r & 1) + c];
        }, flush);
    });
    flush();
    route_rows_out<4, KMAX>(bs, bi, live, lane, rbase, qb0, H, h, k, out, out_n);
}

/* ------------------------------------------------------------ routed top-k on the warpgroup MMA
 * The selection in use on sm_90a: the two sweeps, bounds and exact scoring
 * of route_topk_mma_kernel (the same lists to the bit) with the score tiles
 * from wgmma.  A CTA is one warpgroup and 64 query rows (16 a warp, two
 * rows a thread: the accumulator layout of m64n64 is that of mma.sync m16n8
 * per warp, rows g and g + 8, columns 8 j + 2 (lane % 4) + {0, 1}), its Q in
 * shared memory in the 128-byte swizzle (read by descriptor).
 *
 * Candidate tiles come by bulk copy (one thread, the TMA engine) into a
 * ring of mbarriers: route_prep_kernel<true> stores the bf16 rows
 * already swizzled, tile by tile, so a tile is one linear 8 KB copy that
 * lands in the layout the wgmma reads, and its 64 norms one 256-byte copy.
 * Each warp releases a stage (its own arrive on the stage's "empty"
 * barrier) once its wgmma has read it; thread 0 refills it.  The cp.async
 * version (ninth session, ncu on a real 2.2M-token document) spent ~100
 * instructions a thread and tile on load addresses, and a third of its
 * stall cycles on the CTA barrier each tile needed.  (Two to four
 * warpgroups a CTA sharing the ring -- a quarter of the L2 traffic -- were
 * measured slower: 2.4 -> 3.1-3.7 ms at 1M tokens.  L2 was 28 % busy.) */
#if defined(FOLIO_WGMMA)
constexpr int kWgThreads = 128;
/* Ring stages; a stage is refilled two tiles after its use (kWgLead tiles
 * ahead), when every warp has long released it, so thread 0's refill never
 * waits and its warp -- whose wgmma the other three wait for -- stays in
 * step.  (Measured against refilling one tile after use: the same, 1.981
 * vs 1.982 ms at 1M tokens, ninth session; kept for the reason above.) */
#ifndef FOLIO_ROUTE_WG_STAGES
#define FOLIO_ROUTE_WG_STAGES 4
#endif
constexpr int kWgStages = FOLIO_ROUTE_WG_STAGES;
constexpr int kWgLead = kWgStages - 2;
static_assert(kWgLead >= 1 && (kWgStages & (kWgStages - 1)) == 0, "4, 8, ... stages (the tile counter's / and % stay shifts)");

struct RouteWgSmem {
    __nv_bfloat16 k[kWgStages][64 * 64]; /* candidate tiles (swizzled), each 1024-aligned */
    __nv_bfloat16 qt[64 * 64];           /* the CTA's query rows (swizzled) */
    float n[kWgStages][64];              /* the tiles' norms */
    uint64_t full[kWgStages], empty[kWgStages];
    RouteQueues<4> que;
    int qcount[4];
};

/* CTAs an SM the registers must allow: 4 caps them at 128 (~100 bytes of
 * spills) and beat 3 CTAs at 136 registers by 7-11 % at 1-2M tokens; left
 * free, ptxas took 240+ registers (2 CTAs an SM: 25 % slower).  Ninth
 * session, GPU_NOTES.md. */
#ifndef FOLIO_ROUTE_WG_MIN_BLOCKS
#define FOLIO_ROUTE_WG_MIN_BLOCKS 4
#endif

template <int KMAX>
__global__ void __launch_bounds__(kWgThreads, FOLIO_ROUTE_WG_MIN_BLOCKS) route_topk_wg_kernel(
    const float *node_q, const float *node_k, int64_t ld, int64_t nb, int64_t nbp, int H, int G, int k, int64_t qb0,
    int64_t qb1, const __nv_bfloat16 *q16, const float *qnorm, const __nv_bfloat16 *k16, const float *knorm,
    int32_t *out, int32_t *out_n)
{
    extern __shared__ __align__(1024) unsigned char route_wg_raw[];
    /* the runtime aligns dynamic shared memory to 16 bytes only: the
     * swizzled tiles need 1024 (the launch adds the slack) */
    RouteWgSmem &sm = *reinterpret_cast<RouteWgSmem *>(route_wg_raw +
                                                        ((1024u - (smem_u32(route_wg_raw) & 1023u)) & 1023u));
    const int h = blockIdx.y, t = threadIdx.x, lane = t & 31, warp = t >> 5, q4 = lane & 3;
    const int64_t cta0 = qb0 + (int64_t)blockIdx.x * 64, rbase = cta0 + 16 * warp;
    const int nbi = (int)nb;
    const int64_t ntile = (nb + 63) / 64;
    const __nv_bfloat16 *kh = k16 + (int64_t)h * nbp * 64;
    const float *knh = knorm + (int64_t)h * nbp;
    if (t == 0) {
        for (int s = 0; s < kWgStages; s++) {
            mbar_init(smem_u32(&sm.full[s]), 1);
            mbar_init(smem_u32(&sm.empty[s]), 4); /* one arrive a warp */
        }
        mbar_init_fence();
    }
    /* the CTA's 64 query rows (bf16, swizzled in global memory by their
     * own row index, here by their place in the CTA; rows past qb1: zeros) */
#pragma unroll
    for (int i = 0; i < 64 * 8 / kWgThreads; i++) {
        const int idx = t + i * kWgThreads, r = idx >> 3, c = idx & 7;
        const int64_t row = cta0 + r;
        const bool p = row < qb1;
        const int64_t src = p ? row : 0;
        cp_async16_s(smem_u32(sm.qt) + swz(r, c), q16 + ((int64_t)h * nbp + src) * 64 + ((c ^ (int)(src & 7)) << 3), p);
    }
    cp_async_commit();
    /* this thread's 2 rows: r -> rbase + 8 r + lane / 4 */
    bool live[2];
    int g0[2];
    float qn[2], T[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int64_t row = rbase + 8 * r + lane / 4;
        live[r] = row < qb1;
        g0[r] = live[r] ? (int)((row / G) * G) : -1;
        qn[r] = live[r] ? qnorm[(int64_t)h * nbp + row] * kRouteEps : 0.f;
    }
    cp_async_wait<0>();
    wg_proxy_fence(); /* the cp.async writes of Q, visible to the wgmma (async proxy) */
    __syncthreads();  /* ... every thread's; and the barriers are initialized */
    const uint64_t dq = gmma_desc(smem_u32(sm.qt), 16);

    /* The ring runs over 2 ntile tiles (both sweeps): tile g is candidate
     * tile g % ntile, in stage g % S, its (g / S)-th use: phase parity.
     * (One sweep with a running cut -- the quad's k-th exact scores, tiles
     * from the CTA's neighbourhood around -- was measured 3.5x slower at 1M
     * tokens: the loose early cut sends too many candidates to exact
     * scoring.  Ninth session.) */
    const int64_t total = 2 * ntile;
    auto tile_of = [&](int64_t g) { return g < ntile ? g : g - ntile; };
    auto issue = [&](int64_t g) { /* thread 0 */
        if (g >= total) return;
        const int s = (int)(g % kWgStages);
        if (g >= kWgStages) mbar_wait(smem_u32(&sm.empty[s]), (uint32_t)((g / kWgStages - 1) & 1));
        const int64_t j0 = tile_of(g) * 64;
        const uint32_t fb = smem_u32(&sm.full[s]);
        mbar_expect_tx(fb, 64 * 64 * 2 + 64 * 4);
        bulk_load(smem_u32(sm.k[s]), kh + j0 * 64, 64 * 64 * 2, fb);
        bulk_load(smem_u32(sm.n[s]), knh + j0, 64 * 4, fb);
    };
    if (t == 0)
        for (int64_t g = 0; g < kWgLead; g++) issue(g);
    /* tile g's scores (this thread's accumulators) and norms to scan(S, kv, j0) */
    auto consume = [&](int64_t g, auto &&scan) {
        if (t == 0) issue(g + kWgLead); /* into the stage of tile g - 2 */
        const int s = (int)(g % kWgStages);
        mbar_wait(smem_u32(&sm.full[s]), (uint32_t)((g / kWgStages) & 1));
        float S[8][4];
        qk_tile_wg(S, dq, gmma_desc(smem_u32(sm.k[s]), 16));
        float2 kv[8];
#pragma unroll
        for (int nf = 0; nf < 8; nf++) kv[nf] = *reinterpret_cast<const float2 *>(&sm.n[s][nf * 8 + 2 * q4]);
        __syncwarp();
        if (lane == 0) mbar_arrive(smem_u32(&sm.empty[s]));
        scan(S, kv, (int)(tile_of(g) * 64));
    };

    float bs[2][KMAX];
    int32_t bi[2][KMAX];
    route_rows_clear<2, KMAX>(bs, bi);
    /* Sweep 0: T (route_topk_mma_kernel's, two rows a thread). */
    {
        float bk[2][16];
#pragma unroll
        for (int r = 0; r < 2; r++)
#pragma unroll
            for (int s2 = 0; s2 < 16; s2++) bk[r][s2] = -INFINITY;
        for (int64_t g = 0; g < ntile; g++)
            consume(g, [&](const float (&S)[8][4], const float2 (&kv)[8], int j0) {
                route_bound_tile<2, 16>(bk, qn, g0, G, nbi, q4, kv, j0,
                                        [&](int r, int nf, int c) { return S[nf][2 * r + c]; });
            });
        route_cut<2, 16>(bk, live, k, lane, T);
    }

    /* Sweep 1: exact scores of the candidates whose upper bound reaches T,
     * through the warp's queue, as route_topk_mma_kernel. */
    if (lane == 0) sm.qcount[warp] = 0;
    __syncwarp();
    auto flush = [&]() { route_flush<2, KMAX>(bs, bi, sm.que, sm.qcount, warp, lane, rbase, node_q, node_k, ld, h); };
    for (int64_t g = ntile; g < total; g++)
        consume(g, [&](const float (&S)[8][4], const float2 (&kv)[8], int j0) {
            route_offer_tile<2, KMAX>(bs, bi, qn, T, g0, G, nbi, lane, kv, j0, sm.que, sm.qcount, warp,
                                      [&](int r, int nf, int c) { return S[nf][2 * r + c]; }, flush);
        });
    flush();
    route_rows_out<2, KMAX>(bs, bi, live, lane, rbase, qb0, H, h, k, out, out_n);
}
#endif /* FOLIO_WGMMA */

/* ------------------------------------------------------------ residual + norm */
/* One warp per (token, head): x <- sqrt(d_h) (x + y) / ||x + y|| over the head's values. */
__global__ void residual_l2norm_kernel(float *X, const float *Y, int64_t n, int H, int d_h)
{
    const int64_t w = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (w >= n * H) return;
    const int64_t t = w / H;
    const int h = (int)(w % H);
    float *x = X + t * (int64_t)H * d_h + h * d_h;
    const float *y = Y + t * (int64_t)H * d_h + h * d_h;
    float ss = 0.f;
    for (int c = lane; c < d_h; c += 32) {
        const float v = x[c] + y[c];
        ss += v * v;
    }
    for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
    const float inv = ss > 0.f ? sqrtf((float)d_h) / sqrtf(ss) : 0.f;
    for (int c = lane; c < d_h; c += 32) x[c] = (x[c] + y[c]) * inv;
}

/* ------------------------------------------------------------ bench inputs */
__global__ void fill_random_bf16(__nv_bfloat16 *x, int64_t n, uint64_t seed)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        uint64_t z = seed + (uint64_t)i * 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        const float u = (float)(z >> 40) * (1.0f / 16777216.0f); /* [0,1) */
        x[i] = __float2bfloat16_rn(2.f * u - 1.f);
    }
}

/* Each (row, head) slice of d_h values scaled to norm sqrt(d_h): the
 * encoder's per-head RMS normalization, so that the bench's scores have the
 * spread of real layer inputs (a row's own key scores ~8 above the rest in
 * base 2, which decides how often the softmax rescales). */
__global__ void rmsnorm_rows_bf16(__nv_bfloat16 *x, int64_t rows, int d_h)
{
    for (int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; r < rows;
         r += (int64_t)gridDim.x * blockDim.x) {
        __nv_bfloat16 *v = x + r * d_h;
        float ss = 0.f;
        for (int j = 0; j < d_h; j++) ss += __bfloat162float(v[j]) * __bfloat162float(v[j]);
        const float s = ss > 0.f ? sqrtf((float)d_h / ss) : 0.f;
        for (int j = 0; j < d_h; j++) v[j] = __float2bfloat16_rn(__bfloat162float(v[j]) * s);
    }
}

/* Bench selection shaped like hier+topk: s_sum - 8 contiguous nodes from the
 * block's own group onward (the hierarchical siblings), then 8 scattered
 * "routed" nodes (fewer when s_sum < 16). */
__global__ void fill_sel(int32_t *sel, int32_t *sel_n, int64_t nqb, int H, int s_sum, int64_t n_nodes)
{
    const int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (r >= nqb * H) return;
    const int64_t qb = r / H;
    const int routed = s_sum >= 16 ? 8 : 0;
    const int64_t base = (qb / 64) * 64;
    for (int e = 0; e < s_sum; e++) {
        int64_t node;
        if (e < s_sum - routed) {
            node = (base + e) % n_nodes;
        } else {
            uint64_t z = (uint64_t)r * 0x9E3779B97F4A7C15ull + (uint64_t)e * 0xBF58476D1CE4E5B9ull;
            z ^= z >> 29;
            node = (int64_t)(z % (uint64_t)n_nodes);
        }
        sel[r * s_sum + e] = (int32_t)node;
    }
    sel_n[r] = s_sum;
}

int grid_for(int64_t n, int threads)
{
    int64_t b = (n + threads - 1) / threads;
    return (int)std::min<int64_t>(std::max<int64_t>(b, 1), 65535 * 8);
}

/* Frees a list of device pointers on scope exit. */
struct DevBufs {
    std::vector<void *> p;
    ~DevBufs()
    {
        for (void *q : p) cudaFree(q);
    }
    template <typename T> cudaError_t alloc(T **out, size_t bytes)
    {
        void *q = nullptr;
        cudaError_t e = cudaMalloc(&q, bytes ? bytes : 16);
        if (e == cudaSuccess) p.push_back(q);
        *out = (T *)q;
        return e;
    }
};

} // namespace

#ifndef FOLIO_CUDA_ARCHS
#define FOLIO_CUDA_ARCHS "?" /* set by CMake from CMAKE_CUDA_ARCHITECTURES */
#endif
extern "C" folio_status_t folio_cuda_device_code_ok(int device)
{
    /* loading one kernel of the module fails when no image or PTX fits */
    cudaFuncAttributes fa;
    const cudaError_t e = cudaFuncGetAttributes(&fa, block_means_kernel);
    if (e == cudaSuccess) return FOLIO_OK;
    (void)cudaGetLastError();
    cudaDeviceProp prop;
    const bool named = cudaGetDeviceProperties(&prop, device) == cudaSuccess;
    FOLIO_CHECK_GENERIC(false, FOLIO_ERR_CUDA,
                        "CUDA device %d (%s, compute capability %d.%d): this build has GPU code for architecture(s) "
                        "%s only (%s); configure with -DCMAKE_CUDA_ARCHITECTURES=%d%d (or a list including it)",
                        device, named ? prop.name : "?", named ? prop.major : 0, named ? prop.minor : 0,
                        FOLIO_CUDA_ARCHS, cudaGetErrorString(e), named ? prop.major : 0, named ? prop.minor : 0);
    return FOLIO_ERR_CUDA;
}

extern "C" folio_status_t folio_cuda_malloc(void **p, size_t bytes)
{
    FOLIO_CHECK_GENERIC(p != NULL, FOLIO_ERR_ARG, "cuda malloc: NULL out pointer");
    *p = NULL;
    FOLIO_CUDA_CHECK(cudaMalloc(p, bytes ? bytes : 16));
    return FOLIO_OK;
}

extern "C" void folio_cuda_free(void **p)
{
    if (!p || !*p) return;
    cudaFree(*p);
    *p = NULL;
}

extern "C" folio_status_t folio_cuda_upload(void *dst, const void *src, size_t bytes)
{
    if (!bytes) return FOLIO_OK;
    FOLIO_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
    return FOLIO_OK;
}

extern "C" folio_status_t folio_cuda_download(void *dst, const void *src, size_t bytes)
{
    if (!bytes) return FOLIO_OK;
    FOLIO_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
    return FOLIO_OK;
}

extern "C" folio_status_t folio_cuda_sync(void)
{
    FOLIO_CUDA_CHECK(cudaDeviceSynchronize());
    return FOLIO_OK;
}

extern "C" folio_status_t folio_cuda_block_means(const float *X, int64_t n, int d, int B, float *out, void *stream)
{
    FOLIO_CHECK_GENERIC(n >= 0 && d > 0 && B > 0, FOLIO_ERR_ARG, "block means: bad n=%lld d=%d B=%d",
                        (long long)n, d, B);
    if (n == 0) return FOLIO_OK;
    const int64_t nb = (n + B - 1) / B;
    FOLIO_CHECK_GENERIC(nb <= 0x7fffffff, FOLIO_ERR_TOO_LARGE, "block means: too many blocks");
    dim3 grid((unsigned)nb);
    block_means_kernel<<<grid, 256, 0, (cudaStream_t)stream>>>(X, n, d, B, out);
    FOLIO_CUDA_CHECK(cudaGetLastError());
    return FOLIO_OK;
}

/* The previous routing kernel (one thread per query block and head, an
 * fmaf chain per candidate, candidates broadcast from shared memory): kept
 * only so that `folio bench attn --backend cuda` times both in one run. */
constexpr int kRowThreads = 128;
constexpr int kRowChunk = 32;

template <int KMAX>
__global__ void __launch_bounds__(kRowThreads) route_topk_rowwise_kernel(const float *node_q, const float *node_k,
                                                                   int64_t ld, int64_t nb, int H,
                                                                   int G, int k, int64_t qb0, int64_t qb1,
                                                                   int32_t *out, int32_t *out_n)
{
    constexpr int D = 64;
    /* every thread reads the same candidate row at once (a broadcast), so
     * rows need no padding and float4 reads quarter the shared loads */
    __shared__ __align__(16) float cand[kRowChunk][D];
    const int h = blockIdx.y;
    const int64_t qb = qb0 + (int64_t)blockIdx.x * kRowThreads + threadIdx.x;
    const bool live = qb < qb1;
    float q[D];
#pragma unroll
    for (int c = 0; c < D; c++) q[c] = live ? node_q[qb * ld + h * D + c] : 0.f;
    const int64_t g0 = live ? (qb / G) * G : -1, g1 = g0 + G;
    float bs[KMAX];
    int32_t bi[KMAX];
#pragma unroll
    for (int e = 0; e < KMAX; e++) { bs[e] = -INFINITY; bi[e] = -1; }

    for (int64_t j0 = 0; j0 < nb; j0 += kRowChunk) {
        __syncthreads();
        for (int idx = threadIdx.x; idx < kRowChunk * D; idx += kRowThreads) {
            const int r = idx / D, c = idx % D;
            const int64_t j = j0 + r;
            cand[r][c] = j < nb ? node_k[j * ld + h * D + c] : 0.f;
        }
        __syncthreads();
        const int cn = (int)min((int64_t)kRowChunk, nb - j0);
        for (int r = 0; r < cn; r++) {
            const int64_t j = j0 + r;
            if (j >= g0 && j < g1) continue; /* own group: covered by the hierarchy */
            float sc = 0.f;
            const float4 *cr = reinterpret_cast<const float4 *>(cand[r]);
#pragma unroll
            for (int c4 = 0; c4 < D / 4; c4++) {
                const float4 v = cr[c4];
                sc = fmaf(q[4 * c4], v.x, sc);
                sc = fmaf(q[4 * c4 + 1], v.y, sc);
                sc = fmaf(q[4 * c4 + 2], v.z, sc);
                sc = fmaf(q[4 * c4 + 3], v.w, sc);
            }
            topk_insert<KMAX>(bs, bi, sc, (int32_t)j);
        }
    }
    if (!live) return;
    const int64_t row = ((qb - qb0) * H + h) * (int64_t)k;
    int cnt = 0;
#pragma unroll
    for (int e = 0; e < KMAX; e++) {
        if (e < k) {
            out[row + e] = bi[e];
            cnt += bi[e] >= 0;
        }
    }
    out_n[(qb - qb0) * H + h] = cnt;
}

/* Launches one of the routing kernels: 0 = in use (for k <= 8 the wgmma
 * one on sm_90a, else mma.sync with scores in registers; for k > 8 the wmma one), 1 = tiled fp32, 2 = one thread
 * per row (the first one; k <= 8), 3 = the wmma tensor-core filtered one. */
static folio_status_t route_launch(int variant, const float *node_q, const float *node_k, int64_t ld, int64_t nb,
                                   int H, int G, int k, int64_t qb0, int64_t qb1, int32_t *out, int32_t *out_n,
                                   cudaStream_t st)
{
    if (variant == 2) {
        FOLIO_CHECK_GENERIC(k <= 8, FOLIO_ERR_UNSUPPORTED, "route rowwise: k <= 8 only");
        dim3 grid((unsigned)((qb1 - qb0 + kRowThreads - 1) / kRowThreads), (unsigned)H);
        route_topk_rowwise_kernel<8><<<grid, kRowThreads, 0, st>>>(node_q, node_k, ld, nb, H, G, k, qb0, qb1, out,
                                                                   out_n);
        FOLIO_CUDA_CHECK(cudaGetLastError());
        return FOLIO_OK;
    }
    dim3 grid((unsigned)((qb1 - qb0 + kRT - 1) / kRT), (unsigned)H);
    if (variant == 1) {
        if (k <= 8)
            route_topk_kernel<8><<<grid, kRouteThreads, 0, st>>>(node_q, node_k, ld, nb, H, G, k, qb0, qb1, out, out_n);
        else if (k <= 16)
            route_topk_kernel<16><<<grid, kRouteThreads, 0, st>>>(node_q, node_k, ld, nb, H, G, k, qb0, qb1, out, out_n);
        else
            route_topk_kernel<32><<<grid, kRouteThreads, 0, st>>>(node_q, node_k, ld, nb, H, G, k, qb0, qb1, out, out_n);
        FOLIO_CUDA_CHECK(cudaGetLastError());
        return FOLIO_OK;
    }
    /* the warpgroup kernel: sm_90a code, on a compute capability 9.0 GPU */
    bool wg = false;
#if defined(FOLIO_WGMMA)
    int dev = 0, cc_major = 0, cc_minor = 0;
    wg = variant == 0 && k <= 8 && cudaGetDevice(&dev) == cudaSuccess &&
         cudaDeviceGetAttribute(&cc_major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess &&
         cudaDeviceGetAttribute(&cc_minor, cudaDevAttrComputeCapabilityMinor, dev) == cudaSuccess && cc_major == 9 &&
         cc_minor == 0;
#endif
    /* bf16 copies and norms of the queries and candidates (shared when
     * node_q == node_k, the weightless encoder); the warpgroup kernel's
     * swizzled and padded to whole tiles */
    const bool same = node_q == node_k;
    const int64_t nbp = wg ? (nb + 63) / 64 * 64 : nb;
    const size_t nrow = (size_t)nbp * H;
    __nv_bfloat16 *k16 = nullptr;
    float *kn = nullptr;
    FOLIO_CUDA_CHECK(cudaMallocAsync((void **)&k16, nrow * 64 * 2 * (same ? 1 : 2), st));
    if (cudaMallocAsync((void **)&kn, nrow * 4 * (same ? 1 : 2), st) != cudaSuccess) {
        cudaFreeAsync(k16, st);
        FOLIO_CHECK_GENERIC(false, FOLIO_ERR_CUDA, "route top-k: out of device memory");
    }
    __nv_bfloat16 *q16 = same ? k16 : k16 + nrow * 64;
    float *qn = same ? kn : kn + nrow;
    const unsigned pg = (unsigned)((nrow + 7) / 8);
    if (wg) {
        route_prep_kernel<true><<<pg, 256, 0, st>>>(node_k, ld, nb, nbp, H, k16, kn);
        if (!same) route_prep_kernel<true><<<pg, 256, 0, st>>>(node_q, ld, nb, nbp, H, q16, qn);
    } else {
        route_prep_kernel<false><<<pg, 256, 0, st>>>(node_k, ld, nb, nbp, H, k16, kn);
        if (!same) route_prep_kernel<false><<<pg, 256, 0, st>>>(node_q, ld, nb, nbp, H, q16, qn);
    }
    cudaError_t le = cudaSuccess;
#if defined(FOLIO_WGMMA)
    if (wg) {
        const size_t smem = sizeof(RouteWgSmem) + 1024;
        le = cudaFuncSetAttribute(route_topk_wg_kernel<8>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (le == cudaSuccess) {
            dim3 wgrid((unsigned)((qb1 - qb0 + 63) / 64), (unsigned)H);
            route_topk_wg_kernel<8><<<wgrid, kWgThreads, smem, st>>>(node_q, node_k, ld, nb, nbp, H, G, k, qb0, qb1,
                                                                     q16, qn, k16, kn, out, out_n);
        }
    } else
#endif
    {
        /* prefer shared memory over L1 so that 4 CTAs (36 KB each) fit an SM */
        cudaFuncSetAttribute(route_topk_tc_kernel<8>, cudaFuncAttributePreferredSharedMemoryCarveout, 100);
        cudaFuncSetAttribute(route_topk_tc_kernel<16>, cudaFuncAttributePreferredSharedMemoryCarveout, 100);
        cudaFuncSetAttribute(route_topk_tc_kernel<32>, cudaFuncAttributePreferredSharedMemoryCarveout, 100);
        if (variant == 0 && k <= 8) {
            dim3 mgrid((unsigned)((qb1 - qb0 + kMmaRows - 1) / kMmaRows), (unsigned)H);
            route_topk_mma_kernel<8><<<mgrid, kMmaThreads, 0, st>>>(node_q, node_k, ld, nb, H, G, k, qb0, qb1, q16,
                                                                      qn, k16, kn, out, out_n);
        } else if (k <= 8)
            route_topk_tc_kernel<8><<<grid, kRouteThreads, 0, st>>>(node_q, node_k, ld, nb, H, G, k, qb0, qb1, q16,
                                                                    qn, k16, kn, out, out_n);
        else if (k <= 16)
            route_topk_tc_kernel<16><<<grid, kRouteThreads, 0, st>>>(node_q, node_k, ld, nb, H, G, k, qb0, qb1, q16,
                                                                     qn, k16, kn, out, out_n);
        else
            route_topk_tc_kernel<32><<<grid, kRouteThreads, 0, st>>>(node_q, node_k, ld, nb, H, G, k, qb0, qb1, q16,
                                                                     qn, k16, kn, out, out_n);
    }
    const cudaError_t last = cudaGetLastError(); /* read (and cleared) in every case */
    if (le == cudaSuccess) le = last;
    cudaFreeAsync(k16, st);
    cudaFreeAsync(kn, st);
    FOLIO_CHECK_GENERIC(le == cudaSuccess, FOLIO_ERR_CUDA, "route top-k: %s", cudaGetErrorString(le));
    return FOLIO_OK;
}

extern "C" folio_status_t folio_cuda_route_topk(const float *node_q, const float *node_k, int64_t ld,
                                                int64_t nb, int H, int d_h, int G, int k, int64_t qb0,
                                                int64_t qb1, int32_t *out, int32_t *out_n, void *stream)
{
    FOLIO_CHECK_GENERIC(d_h == 64, FOLIO_ERR_UNSUPPORTED, "route top-k: head width %d unsupported (64 only)", d_h);
    FOLIO_CHECK_GENERIC(k >= 1 && k <= 32, FOLIO_ERR_UNSUPPORTED, "route top-k: k = %d (1..32 supported)", k);
    FOLIO_CHECK_GENERIC(G >= 1 && H >= 1 && ld >= (int64_t)H * d_h && qb0 >= 0 && qb0 <= qb1 && qb1 <= nb,
                        FOLIO_ERR_ARG, "route top-k: bad G=%d H=%d ld=%lld range [%lld,%lld) of %lld blocks",
                        G, H, (long long)ld, (long long)qb0, (long long)qb1, (long long)nb);
    if (qb1 == qb0) return FOLIO_OK;
    /* block indices are int32 in the output and in the kernels' tile arithmetic */
    FOLIO_CHECK_GENERIC(nb <= 0x7fffffc0, FOLIO_ERR_TOO_LARGE, "route top-k: %lld blocks (at most 2^31 - 64)",
                        (long long)nb);
    FOLIO_CHECK_GENERIC(ld % 4 == 0 && ((uintptr_t)node_q % 16) == 0 && ((uintptr_t)node_k % 16) == 0,
                        FOLIO_ERR_ARG, "route top-k: rows must be 16-byte aligned (ld=%lld)", (long long)ld);
    return route_launch(0, node_q, node_k, ld, nb, H, G, k, qb0, qb1, out, out_n, (cudaStream_t)stream);
}

/* One thread per (query block, head): hierarchical siblings, then the routed
 * blocks from `routed` (qb1-qb0, H, k) / routed_n. */
__global__ void assemble_sel_kernel(folio_hier_t hh, int kind, uint32_t qb0, uint32_t qb1, int H,
                                    const int32_t *routed, const int32_t *routed_n, int k,
                                    int32_t *sel, int32_t *sel_n, int s_max)
{
    const int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    const int64_t nr = (int64_t)(qb1 - qb0) * H;
    if (r >= nr) return;
    const uint32_t b = qb0 + (uint32_t)(r / H);
    int32_t *row = sel + r * s_max;
    int e = 0;
    if (kind == FOLIO_PATTERN_LONGT5) {
        for (uint32_t j = 0; j < hh.count[1] && e < s_max; j++) row[e++] = (int32_t)(hh.offset[1] + j);
    } else if (kind == FOLIO_PATTERN_HIER || kind == FOLIO_PATTERN_HIER_TOPK) {
        uint32_t a = b;
        for (uint32_t l = 1; l <= hh.n_levels; l++) {
            uint32_t s0, s1;
            if (l >= hh.n_levels) {
                s0 = 0;
                s1 = hh.count[hh.n_levels];
            } else {
                s0 = (a / hh.G) * hh.G;
                const uint64_t e1 = (uint64_t)s0 + hh.G;
                s1 = e1 < hh.count[l] ? (uint32_t)e1 : hh.count[l];
            }
            for (uint32_t j = s0; j < s1 && e < s_max; j++)
                if (j != a) row[e++] = (int32_t)(hh.offset[l] + j);
            a /= hh.G;
        }
        if (kind == FOLIO_PATTERN_HIER_TOPK && routed) {
            const int rn = routed_n[r];
            for (int t = 0; t < rn && e < s_max; t++) row[e++] = routed[r * k + t] + (int32_t)hh.offset[1];
        }
    }
    sel_n[r] = e;
    for (int t = e; t < s_max; t++) row[t] = -1;
}

extern "C" folio_status_t folio_cuda_attn_select(const folio_pattern_t *p, const folio_hier_t *h,
                                                 const float *node_q, const float *node_k, int64_t ld,
                                                 uint32_t qb0, uint32_t qb1, int32_t *sel, int32_t *sel_n,
                                                 int s_max, void *stream)
{
    FOLIO_CHECK_GENERIC(p && h && sel && sel_n, FOLIO_ERR_ARG, "select cuda: NULL argument");
    FOLIO_CHECK_GENERIC(qb0 <= qb1 && qb1 <= h->count[1], FOLIO_ERR_ARG,
                        "select cuda: query blocks [%u, %u) outside [0, %u)", qb0, qb1, h->count[1]);
    const uint32_t need = folio_pattern_summary_max(p, h->n);
    FOLIO_CHECK_GENERIC(s_max >= 0 && (uint32_t)s_max >= need, FOLIO_ERR_ARG,
                        "select cuda: s_max %d < %u summary keys of the pattern", s_max, need);
    if (qb1 == qb0 || s_max == 0) {
        if (qb1 > qb0)
            FOLIO_CUDA_CHECK(cudaMemsetAsync(sel_n, 0, (size_t)(qb1 - qb0) * p->heads * 4, (cudaStream_t)stream));
        return FOLIO_OK;
    }
    cudaStream_t st = (cudaStream_t)stream;
    const int H = (int)p->heads;
    int32_t *routed = nullptr, *routed_n = nullptr;
    const bool topk = p->kind == FOLIO_PATTERN_HIER_TOPK && h->n_levels >= 2 && p->topk > 0;
    const int k = topk ? (int)p->topk : 1;
    folio_status_t rs = FOLIO_OK;
    if (topk) {
        FOLIO_CUDA_CHECK(cudaMallocAsync((void **)&routed, (size_t)(qb1 - qb0) * H * k * 4, st));
        if (cudaMallocAsync((void **)&routed_n, (size_t)(qb1 - qb0) * H * 4, st) != cudaSuccess) {
            cudaFreeAsync(routed, st);
            FOLIO_CHECK_GENERIC(false, FOLIO_ERR_CUDA, "select cuda: out of device memory");
        }
        rs = folio_cuda_route_topk(node_q, node_k, ld, h->count[1], H, (int)p->head_dim, (int)h->G, k, qb0, qb1,
                                   routed, routed_n, stream);
    }
    if (rs == FOLIO_OK) {
        const int64_t nr = (int64_t)(qb1 - qb0) * H;
        assemble_sel_kernel<<<(unsigned)((nr + 127) / 128), 128, 0, st>>>(*h, (int)p->kind, qb0, qb1, H, routed,
                                                                          routed_n, k, sel, sel_n, s_max);
        if (cudaGetLastError() != cudaSuccess) rs = FOLIO_ERR_CUDA;
    }
    if (routed) cudaFreeAsync(routed, st);
    if (routed_n) cudaFreeAsync(routed_n, st);
    FOLIO_CHECK_GENERIC(rs == FOLIO_OK, rs, "select cuda: kernel launch failed");
    return FOLIO_OK;
}

/* One thread per (node of level l, column): weighted mean of its children. */
__global__ void hier_level_kernel(float *nodes, int d, uint32_t off_c, uint32_t cnt_c, uint32_t off_p,
                                  uint32_t cnt_p, uint32_t G, uint64_t span_c, uint64_t n)
{
    const uint32_t pnode = blockIdx.y;
    for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < d; c += gridDim.x * blockDim.x) {
        const uint32_t c0 = pnode * G, c1 = min(cnt_c, c0 + G);
        double acc = 0;
        uint64_t tot = 0;
        for (uint32_t ch = c0; ch < c1; ch++) {
            const uint64_t t0 = (uint64_t)ch * span_c;
            const uint64_t t1 = min(n, t0 + span_c);
            const uint64_t w = t1 > t0 ? t1 - t0 : 0;
            acc += (double)w * nodes[(uint64_t)(off_c + ch) * d + c];
            tot += w;
        }
        nodes[(uint64_t)(off_p + pnode) * d + c] = tot ? (float)(acc / (double)tot) : 0.f;
    }
}

extern "C" folio_status_t folio_cuda_hier_build_upper(const folio_hier_t *h, int d, float *nodes, void *stream)
{
    FOLIO_CHECK_GENERIC(h && nodes && d > 0, FOLIO_ERR_ARG, "hier upper cuda: bad arguments");
    uint64_t span = h->B;
    for (uint32_t l = 2; l <= h->n_levels; l++) {
        FOLIO_CHECK_GENERIC(h->count[l] <= 65535, FOLIO_ERR_TOO_LARGE, "hier upper cuda: level %u too wide", l);
        dim3 grid((unsigned)((d + 127) / 128), h->count[l]);
        hier_level_kernel<<<grid, 128, 0, (cudaStream_t)stream>>>(nodes, d, h->offset[l - 1], h->count[l - 1],
                                                                  h->offset[l], h->count[l], h->G, span, h->n);
        FOLIO_CUDA_CHECK(cudaGetLastError());
        span *= h->G;
    }
    return FOLIO_OK;
}

extern "C" folio_status_t folio_cuda_residual_l2norm(float *X, const float *Y, int64_t n, int H, int d_h, void *stream)
{
    FOLIO_CHECK_GENERIC(n >= 0 && H > 0 && d_h > 0, FOLIO_ERR_ARG, "residual: bad shape");
    if (n == 0) return FOLIO_OK;
    const int64_t threads = n * H * 32;
    residual_l2norm_kernel<<<(unsigned)((threads + 255) / 256), 256, 0, (cudaStream_t)stream>>>(X, Y, n, H, d_h);
    FOLIO_CUDA_CHECK(cudaGetLastError());
    return FOLIO_OK;
}

/* Uploads n fp32 host values as bf16 into dst (scratch dTmp >= n floats). */
static folio_status_t upload_bf16(const float *src, size_t n, float *dTmp, uint16_t *dst)
{
    if (!n) return FOLIO_OK;
    FOLIO_CUDA_CHECK(cudaMemcpy(dTmp, src, n * 4, cudaMemcpyHostToDevice));
    return folio_cuda_f32_to_bf16(dTmp, dst, (int64_t)n, NULL);
}

extern "C" folio_status_t folio_attn_sparse_fwd_cuda_host(const folio_attn_args_t *a)
{
    return folio_attn_sparse_fwd_cuda_host_out(a, 0);
}

extern "C" folio_status_t folio_attn_sparse_fwd_cuda_host_out(const folio_attn_args_t *a, int out_bf16)
{
    return folio_attn_sparse_fwd_cuda_host_rn(a, out_bf16, 0.f, NULL);
}

extern "C" folio_status_t folio_attn_sparse_fwd_cuda_host_rn(const folio_attn_args_t *a, int out_bf16,
                                                             float row_norm_max, int *redone)
{
    FOLIO_CHECK_GENERIC(a && a->q && a->k && a->v && a->out, FOLIO_ERR_ARG, "attn cuda host: NULL q/k/v/out");
    FOLIO_CHECK_GENERIC(a->B > 0 && a->H > 0 && a->d_h > 0 && a->q1 >= a->q0 && a->nx >= 0 && a->n_nodes >= 0,
                        FOLIO_ERR_ARG, "attn cuda host: bad shape (B=%d H=%d d_h=%d)", a->B, a->H, a->d_h);
    const int64_t d = (int64_t)a->H * a->d_h;
    const int64_t nq = a->q1 - a->q0;
    const int64_t nqb = (nq + a->B - 1) / a->B;
    /* Selections are checked here, on the host, because the kernel can only
     * skip a bad index silently. */
    if (a->s_max > 0) {
        FOLIO_CHECK_GENERIC(a->sel && a->sel_n && a->node_k && a->node_v, FOLIO_ERR_ARG,
                            "attn cuda host: s_max > 0 but selections or nodes missing");
        for (int64_t r = 0; r < nqb * a->H; r++) {
            FOLIO_CHECK_GENERIC(a->sel_n[r] >= 0 && a->sel_n[r] <= a->s_max, FOLIO_ERR_ARG,
                                "attn cuda host: sel_n[%lld] = %d outside [0, %d]", (long long)r,
                                a->sel_n[r], a->s_max);
            for (int e = 0; e < a->sel_n[r]; e++) {
                const int32_t v = a->sel[r * a->s_max + e];
                FOLIO_CHECK_GENERIC(v >= 0 && v < a->n_nodes, FOLIO_ERR_ARG,
                                    "attn cuda host: sel[%lld][%d] = %d outside [0, %lld)", (long long)r, e,
                                    v, (long long)a->n_nodes);
            }
        }
    }
    /* Device copies are packed (stride d); host rows may have a larger ld. */
    const size_t xs = (size_t)a->nx * d, ns = (size_t)a->n_nodes * d;
    std::vector<float> pack;
    auto packed = [&](const float *src, int64_t rows, int64_t ld) -> const float * {
        if (ld == d) return src;
        pack.assign((size_t)rows * d, 0.f);
        for (int64_t r = 0; r < rows; r++) memcpy(&pack[(size_t)(r * d)], src + r * ld, (size_t)d * 4);
        return pack.data();
    };
    DevBufs db;
    float *dTmp = nullptr, *dOut = nullptr, *dMass = nullptr;
    uint16_t *dQ = nullptr, *dK = nullptr, *dV = nullptr, *dNK = nullptr, *dNV = nullptr;
    int32_t *dSel = nullptr, *dSelN = nullptr;
    const size_t sm = (size_t)nqb * a->H * (a->s_max > 0 ? a->s_max : 1);
    FOLIO_CUDA_CHECK(db.alloc(&dTmp, std::max(xs, ns) * 4));
    FOLIO_CUDA_CHECK(db.alloc(&dQ, xs * 2));
    FOLIO_TRY(upload_bf16(packed(a->q, a->nx, a->ld), xs, dTmp, dQ));
    if (a->k == a->q) dK = dQ;
    else {
        FOLIO_CUDA_CHECK(db.alloc(&dK, xs * 2));
        FOLIO_TRY(upload_bf16(packed(a->k, a->nx, a->ld), xs, dTmp, dK));
    }
    if (a->v == a->q) dV = dQ;
    else if (a->v == a->k) dV = dK;
    else {
        FOLIO_CUDA_CHECK(db.alloc(&dV, xs * 2));
        FOLIO_TRY(upload_bf16(packed(a->v, a->nx, a->ld), xs, dTmp, dV));
    }
    if (a->s_max > 0 && ns) {
        FOLIO_CUDA_CHECK(db.alloc(&dNK, ns * 2));
        FOLIO_TRY(upload_bf16(packed(a->node_k, a->n_nodes, a->ld_nodes), ns, dTmp, dNK));
        if (a->node_v == a->node_k) dNV = dNK;
        else {
            FOLIO_CUDA_CHECK(db.alloc(&dNV, ns * 2));
            FOLIO_TRY(upload_bf16(packed(a->node_v, a->n_nodes, a->ld_nodes), ns, dTmp, dNV));
        }
        FOLIO_CUDA_CHECK(db.alloc(&dSel, sm * 4));
        FOLIO_CUDA_CHECK(db.alloc(&dSelN, (size_t)nqb * a->H * 4));
        FOLIO_CUDA_CHECK(cudaMemcpy(dSel, a->sel, sm * 4, cudaMemcpyHostToDevice));
        FOLIO_CUDA_CHECK(cudaMemcpy(dSelN, a->sel_n, (size_t)nqb * a->H * 4, cudaMemcpyHostToDevice));
    }
    const size_t ob = out_bf16 ? 2 : 4; /* bytes an output element */
    FOLIO_CUDA_CHECK(db.alloc(&dOut, (size_t)nq * d * 4));
    /* Poison the outputs so an unwritten element cannot pass as correct. */
    FOLIO_CUDA_CHECK(cudaMemset(dOut, 0xff, (size_t)nq * d * ob));
    if (a->node_mass && a->s_max > 0) {
        FOLIO_CUDA_CHECK(db.alloc(&dMass, sm * 4));
        FOLIO_CUDA_CHECK(cudaMemset(dMass, 0xff, sm * 4));
    }
    int *dRedone = nullptr;
    if (redone) {
        FOLIO_CUDA_CHECK(db.alloc(&dRedone, sizeof(int)));
        FOLIO_CUDA_CHECK(cudaMemset(dRedone, 0, sizeof(int)));
    }

    folio_attn_cuda_args_t k;
    memset(&k, 0, sizeof k);
    k.q = dQ;
    k.k = dK;
    k.v = dV;
    k.ld = d;
    k.x0 = a->x0;
    k.nx = a->nx;
    k.q0 = a->q0;
    k.q1 = a->q1;
    k.n_doc = a->n_doc;
    k.node_k = dNK;
    k.node_v = dNV;
    k.ld_nodes = d;
    k.n_nodes = a->n_nodes;
    k.sel = dSel;
    k.sel_n = dSelN;
    k.s_max = dSel ? a->s_max : 0;
    k.out = dOut;
    k.ld_out = d;
    k.out_bf16 = out_bf16 != 0;
    k.node_mass = dMass;
    k.H = a->H;
    k.d_h = a->d_h;
    k.B = a->B;
    k.W = a->W;
    k.scale = a->scale;
    k.row_norm_max = row_norm_max;
    k.n_redone = dRedone;
    FOLIO_TRY(folio_attn_sparse_fwd_cuda(&k));
    FOLIO_CUDA_CHECK(cudaDeviceSynchronize());
    if (redone) FOLIO_CUDA_CHECK(cudaMemcpy(redone, dRedone, sizeof(int), cudaMemcpyDeviceToHost));
    if (out_bf16) { /* packed bf16 rows at the front of dOut: widen on the host */
        std::vector<uint16_t> hb((size_t)(nq * d));
        FOLIO_CUDA_CHECK(cudaMemcpy(hb.data(), dOut, hb.size() * 2, cudaMemcpyDeviceToHost));
        for (int64_t r = 0; r < nq; r++)
            for (int64_t c = 0; c < d; c++) {
                const uint32_t u = (uint32_t)hb[(size_t)(r * d + c)] << 16;
                memcpy(a->out + r * a->ld_out + c, &u, 4);
            }
    } else if (a->ld_out == d) {
        FOLIO_CUDA_CHECK(cudaMemcpy(a->out, dOut, (size_t)nq * d * 4, cudaMemcpyDeviceToHost));
    } else {
        for (int64_t r = 0; r < nq; r++)
            FOLIO_CUDA_CHECK(cudaMemcpy(a->out + r * a->ld_out, dOut + r * d, (size_t)d * 4, cudaMemcpyDeviceToHost));
    }
    if (a->node_mass && a->s_max > 0) {
        if (dMass) FOLIO_CUDA_CHECK(cudaMemcpy(a->node_mass, dMass, sm * 4, cudaMemcpyDeviceToHost));
        /* slots past sel_n were never written on the device: report 0 there */
        for (int64_t r = 0; r < nqb * a->H; r++)
            for (int e = a->sel_n[r]; e < a->s_max; e++) a->node_mass[r * a->s_max + e] = 0.f;
    }
    return FOLIO_OK;
}

extern "C" folio_status_t folio_attn_bench_cuda(int64_t n, int H, int d_h, int W, int s_sum, int out_bf16,
                                                int with_node_mass, int reps, folio_attn_cuda_bench_t *res)
{
    FOLIO_CHECK_GENERIC(res && n >= 64 && H >= 1 && d_h == 64 && W >= 0 && s_sum >= 0 && reps >= 1,
                        FOLIO_ERR_ARG, "bench attn cuda: bad arguments (n=%lld H=%d d_h=%d W=%d s=%d)",
                        (long long)n, H, d_h, W, s_sum);
    FOLIO_CHECK_GENERIC(folio_cuda_available(), FOLIO_ERR_NO_DEVICE, "bench attn cuda: no CUDA device");
    memset(res, 0, sizeof *res);
    const int64_t d = (int64_t)H * d_h, nqb = (n + 63) / 64, n_nodes = nqb + 64;
    DevBufs db;
    uint16_t *dX, *dN;
    void *dOut;
    int32_t *dSel = nullptr, *dSelN = nullptr;
    float *dMass = nullptr;
    FOLIO_CUDA_CHECK(db.alloc(&dX, (size_t)n * d * 2));
    FOLIO_CUDA_CHECK(db.alloc(&dN, (size_t)n_nodes * d * 2));
    FOLIO_CUDA_CHECK(db.alloc(&dOut, (size_t)n * d * (out_bf16 ? 2 : 4)));
    fill_random_bf16<<<grid_for(n * d, 256), 256>>>((__nv_bfloat16 *)dX, n * d, 1234);
    fill_random_bf16<<<grid_for(n_nodes * d, 256), 256>>>((__nv_bfloat16 *)dN, n_nodes * d, 777);
    rmsnorm_rows_bf16<<<grid_for(n * H, 256), 256>>>((__nv_bfloat16 *)dX, n * H, d_h);
    rmsnorm_rows_bf16<<<grid_for(n_nodes * H, 256), 256>>>((__nv_bfloat16 *)dN, n_nodes * H, d_h);
    if (s_sum > 0) {
        FOLIO_CUDA_CHECK(db.alloc(&dSel, (size_t)nqb * H * s_sum * 4));
        FOLIO_CUDA_CHECK(db.alloc(&dSelN, (size_t)nqb * H * 4));
        fill_sel<<<grid_for(nqb * H, 128), 128>>>(dSel, dSelN, nqb, H, s_sum, n_nodes);
        if (with_node_mass) FOLIO_CUDA_CHECK(db.alloc(&dMass, (size_t)nqb * H * s_sum * 4));
    }
    FOLIO_CUDA_CHECK(cudaGetLastError());
    FOLIO_CUDA_CHECK(cudaDeviceSynchronize());

    folio_attn_cuda_args_t k;
    memset(&k, 0, sizeof k);
    k.q = k.k = k.v = dX;
    k.ld = d;
    k.x0 = 0;
    k.nx = n;
    k.q0 = 0;
    k.q1 = n;
    k.n_doc = n;
    k.node_k = k.node_v = dN;
    k.ld_nodes = d;
    k.n_nodes = n_nodes;
    k.sel = dSel;
    k.sel_n = dSelN;
    k.s_max = s_sum;
    k.out = dOut;
    k.ld_out = d;
    k.out_bf16 = out_bf16;
    k.node_mass = dMass;
    k.H = H;
    k.d_h = d_h;
    k.B = 64;
    k.W = W;
    k.scale = 1.f / sqrtf((float)d_h);
    k.row_norm_max = 1.01f * sqrtf((float)d_h); /* the rows were normalized per head above */

    for (int i = 0; i < 3; i++) FOLIO_TRY(folio_attn_sparse_fwd_cuda(&k));
    FOLIO_CUDA_CHECK(cudaDeviceSynchronize());
    cudaEvent_t e0, e1;
    FOLIO_CUDA_CHECK(cudaEventCreate(&e0));
    FOLIO_CUDA_CHECK(cudaEventCreate(&e1));
    std::vector<float> ms((size_t)reps);
    for (int r = 0; r < reps; r++) {
        FOLIO_CUDA_CHECK(cudaEventRecord(e0));
        FOLIO_TRY(folio_attn_sparse_fwd_cuda(&k));
        FOLIO_CUDA_CHECK(cudaEventRecord(e1));
        FOLIO_CUDA_CHECK(cudaEventSynchronize(e1));
        FOLIO_CUDA_CHECK(cudaEventElapsedTime(&ms[(size_t)r], e0, e1));
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    std::sort(ms.begin(), ms.end());
    res->ms_median = ms[(size_t)reps / 2];
    res->ms_min = ms[0];

    /* Attended pairs per head: window keys (clipped at the document edges) + s_sum. */
    double pairs = 0, tiles = 0;
    for (int64_t i = 0; i < n; i++) {
        const int64_t lo = std::max<int64_t>(0, i - W), hi = std::min<int64_t>(n - 1, i + W);
        pairs += (double)(hi - lo + 1) + s_sum;
    }
    for (int64_t qb = 0; qb < nqb; qb++) {
        const int64_t qs = qb * 64, qe = std::min<int64_t>(n, qs + 64);
        const int64_t lo = std::max<int64_t>(0, qs - W), hi = std::min<int64_t>(n, qe - 1 + W + 1);
        tiles += (double)((hi - lo + 63) / 64) + (s_sum + 63) / 64;
    }
    res->pairs = pairs * H;
    res->tflops_useful = 4.0 * d_h * res->pairs / (res->ms_median * 1e-3) / 1e12;
    res->tflops_computed = 4.0 * d_h * tiles * 64 * 64 * H / (res->ms_median * 1e-3) / 1e12;
    return FOLIO_OK;
}

/* Routing alone on the device: random fp32 level-1 summaries of a document
 * of n tokens (upper levels built), folio_cuda_attn_select over all query
 * blocks, median of `reps` (events on the legacy stream). */
__global__ void fill_random_f32(float *x, int64_t n, uint64_t seed)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        uint64_t z = seed + (uint64_t)i * 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        x[i] = (float)((double)(z >> 40) / 16777216.0 * 2.0 - 1.0);
    }
}

extern "C" folio_status_t folio_cuda_bench_select(const folio_pattern_t *p, int64_t n, int reps, double *ms_median,
                                                  double *route_ms)
{
    FOLIO_CHECK_GENERIC(p && ms_median && n >= 1 && reps >= 1, FOLIO_ERR_ARG, "bench select cuda: bad arguments");
    FOLIO_CHECK_GENERIC(folio_cuda_available(), FOLIO_ERR_NO_DEVICE, "bench select cuda: no CUDA device");
    folio_hier_t h;
    FOLIO_TRY(folio_hier_init(&h, (uint64_t)n, p->block, p->group));
    const int64_t d = (int64_t)p->heads * p->head_dim, nb = h.count[1];
    const int s_max = (int)folio_pattern_summary_max(p, (uint64_t)n);
    *ms_median = 0;
    if (s_max == 0) return FOLIO_OK;
    DevBufs db;
    float *dN;
    int32_t *dSel, *dSelN;
    FOLIO_CUDA_CHECK(db.alloc(&dN, (size_t)h.n_nodes * d * 4));
    FOLIO_CUDA_CHECK(db.alloc(&dSel, (size_t)nb * p->heads * s_max * 4));
    FOLIO_CUDA_CHECK(db.alloc(&dSelN, (size_t)nb * p->heads * 4));
    fill_random_f32<<<grid_for(nb * d, 256), 256>>>(dN, nb * d, 4242);
    FOLIO_CUDA_CHECK(cudaGetLastError());
    FOLIO_TRY(folio_cuda_hier_build_upper(&h, (int)d, dN, NULL));
    FOLIO_TRY(folio_cuda_attn_select(p, &h, dN, dN, d, 0, (uint32_t)nb, dSel, dSelN, s_max, NULL)); /* warm-up */
    FOLIO_CUDA_CHECK(cudaDeviceSynchronize());
    cudaEvent_t e0, e1;
    FOLIO_CUDA_CHECK(cudaEventCreate(&e0));
    FOLIO_CUDA_CHECK(cudaEventCreate(&e1));
    std::vector<float> ms((size_t)reps);
    for (int r = 0; r < reps; r++) {
        cudaEventRecord(e0);
        folio_status_t st = folio_cuda_attn_select(p, &h, dN, dN, d, 0, (uint32_t)nb, dSel, dSelN, s_max, NULL);
        cudaEventRecord(e1);
        cudaEventSynchronize(e1);
        cudaEventElapsedTime(&ms[(size_t)r], e0, e1);
        if (st != FOLIO_OK) {
            cudaEventDestroy(e0);
            cudaEventDestroy(e1);
            return st;
        }
    }
    /* routing alone: the kernel in use and the three earlier ones (k <= 8) */
    const int k = (int)p->topk;
    if (route_ms && p->kind == FOLIO_PATTERN_HIER_TOPK && h.n_levels >= 2 && k >= 1 && k <= 8 && p->head_dim == 64) {
        int32_t *dR, *dRN;
        FOLIO_CUDA_CHECK(db.alloc(&dR, (size_t)nb * p->heads * k * 4));
        FOLIO_CUDA_CHECK(db.alloc(&dRN, (size_t)nb * p->heads * 4));
        for (int v = 0; v < 4; v++) {
            std::vector<float> rm((size_t)reps);
            for (int r = 0; r < reps + 1; r++) {
                cudaEventRecord(e0);
                FOLIO_TRY(route_launch(v, dN, dN, d, nb, (int)p->heads, (int)h.G, k, 0, nb, dR, dRN, NULL));
                cudaEventRecord(e1);
                cudaEventSynchronize(e1);
                if (r > 0) cudaEventElapsedTime(&rm[(size_t)r - 1], e0, e1);
            }
            FOLIO_CUDA_CHECK(cudaGetLastError());
            std::sort(rm.begin(), rm.end());
            route_ms[v] = rm[(size_t)reps / 2];
        }
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    std::sort(ms.begin(), ms.end());
    *ms_median = ms[(size_t)reps / 2];
    return FOLIO_OK;
}

extern "C" folio_status_t folio_cuda_preload(void)
{
    cudaFuncAttributes fa;
    cudaError_t e = cudaSuccess;
    const void *const kernels[] = {
        (const void *)block_means_kernel,        (const void *)hier_level_kernel,
        (const void *)route_prep_kernel<false>,  (const void *)route_topk_mma_kernel<8>,
        (const void *)route_topk_tc_kernel<8>,   (const void *)route_topk_tc_kernel<16>,
        (const void *)route_topk_tc_kernel<32>,
        (const void *)assemble_sel_kernel,       (const void *)residual_l2norm_kernel,
    };
    for (size_t i = 0; e == cudaSuccess && i < sizeof kernels / sizeof *kernels; i++)
        e = cudaFuncGetAttributes(&fa, kernels[i]);
#if defined(FOLIO_WGMMA)
    int pdev = 0, pmaj = 0, pmin = 0; /* sm_90a code loads on a 9.0 GPU only */
    if (e == cudaSuccess && cudaGetDevice(&pdev) == cudaSuccess &&
        cudaDeviceGetAttribute(&pmaj, cudaDevAttrComputeCapabilityMajor, pdev) == cudaSuccess &&
        cudaDeviceGetAttribute(&pmin, cudaDevAttrComputeCapabilityMinor, pdev) == cudaSuccess && pmaj == 9 && pmin == 0) {
        e = cudaFuncGetAttributes(&fa, route_topk_wg_kernel<8>);
        if (e == cudaSuccess) e = cudaFuncGetAttributes(&fa, route_prep_kernel<true>);
    }
#endif
    if (e == cudaSuccess) e = folio_cuda_preload_embed();
    if (e == cudaSuccess) e = folio_cuda_preload_sparse();
    int dev = 0;
    cudaMemPool_t pool;
    if (e == cudaSuccess) e = cudaGetDevice(&dev);
    if (e == cudaSuccess) e = cudaDeviceGetDefaultMemPool(&pool, dev);
    uint64_t keep = UINT64_MAX;
    if (e == cudaSuccess) e = cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep);
    /* the routing's scratch (bf16 keys, norms, lists: ~100 MB at 10M
     * tokens) comes from the pool: map 256 MB into it now, kept (above) */
    void *scratch = nullptr;
    if (e == cudaSuccess) e = cudaMallocAsync(&scratch, (size_t)256 << 20, 0);
    if (e == cudaSuccess) e = cudaFreeAsync(scratch, 0);
    if (e == cudaSuccess) e = cudaStreamSynchronize(0);
    FOLIO_CUDA_CHECK(e);
    return FOLIO_OK;
}
