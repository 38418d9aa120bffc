/* attn/attn_sparse.cu — fused block-sparse flash-style attention forward on
 * tensor cores (bf16 operands, fp32 accumulation and softmax).
 * Semantics: attn/attn_cuda.h (same as the CPU kernel
 * folio_attn_sparse_fwd_cpu of attn/attn.h).  Two matrix paths share
 * everything else (tile plan, loads, masks, softmax steps, epilogue):
 *  - warpgroup MMA (wgmma m64n64k16, sm_90a builds, Hopper devices): one
 *    warpgroup of 4 warps x 16 rows per CTA, operands read from the swizzled
 *    shared-memory tiles by descriptor (see "wgmma" below); in use on H100/H200;
 *  - mma.sync m16n8k16 for every other architecture, described next.
 *
 * One CTA = one query block of 64 tokens x one head: 2 warps of 32 query
 * rows by default (FOLIO_ATTN_MF=2: each K/V fragment read from shared
 * memory feeds two m16 row fragments), or 4 warps of 16 rows (MF=1; ~5 %
 * slower on an H200, kept for comparison).  Its key tiles (64 keys each) are,
 * in order:
 *   1. the window tiles [lo, hi) with lo = max(0, qs - W), hi = min(n_doc,
 *      qe + W): only tiles that cross a band edge (or the document edge) are
 *      masked element-wise, the others run unmasked;
 *   2. the block's gathered summary keys sel[qb][h][0..s) (shared by all 64
 *      queries, which is what makes the pattern tensor-core friendly), the
 *      last tile masked beyond s.
 * K/V tiles are double-buffered in shared memory (XOR swizzle, so ldmatrix
 * and wgmma read free of bank conflicts): window tiles and Q by TMA on the
 * warpgroup path (one bulk tensor copy a tile, see "TMA"), gathered summary
 * tiles and the mma.sync path by cp.async (16-byte chunks); when k == v
 * (folio's Q = K = V) one tile serves as both.  Scores never leave
 * registers: memory is O(n * d).  Measurements and version history:
 * bench/GPU_NOTES.md.
 *
 * node_mass (optional) needs each node's FINAL softmax weight, known only
 * after the last tile; a short second pass re-scores the summary tiles with
 * the final reference and sum (extra QK^T work of s/(window+s), no PV).
 *
 * Softmax without a running maximum (see "softmax" below): P = 2^(S sl)
 * with the rows' sums from the tensor cores, checked once at the end; the
 * rare blocks that fail the check are redone by sparse_redo_kernel.
 */
#include "attn_cuda_internal.h"

#include <cuda.h> /* CUtensorMap (the encoder is fetched through the runtime: no -lcuda) */
#include <cudaTypedefs.h>
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <algorithm>
#include <type_traits>
#include <vector>


namespace {

constexpr int kTile = 64;      /* keys per tile == query block size B */
constexpr int kD = 64;         /* head width handled by the fast kernel */

/* PTX helpers (cp.async, ldmatrix, mma.sync): attn_cuda_internal.h */

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi)
{
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
}

/* wgmma helpers (descriptors, wgmma_ss, qk_tile_wg, swz): attn_cuda_internal.h,
 * shared with the routing kernels. */
#if defined(FOLIO_WGMMA)
/* d += A * B for 72 columns: A from registers (4 x bf16x2), B from shared
 * memory read N-major -- the 64 dimensions of the V tile, then (at the
 * descriptor's leading byte offset, the next 64-column atom) 8 columns of the
 * ones tile, so that d[8] accumulates the rows' sums of P on the tensor cores
 * (see "Softmax" below). */
#define FOLIO_WG_D36(d)                                                                                          \
    FOLIO_WG_D32(d), "+f"(d[8][0]), "+f"(d[8][1]), "+f"(d[8][2]), "+f"(d[8][3])
__device__ __forceinline__ void wgmma_rs72(float (&d)[9][4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                           uint64_t db)
{
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    asm volatile("wgmma.mma_async.sync.aligned.m64n72k16.f32.bf16.bf16 "
                 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, "
                 "%21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35}"
                 ", {%36, %37, %38, %39}, %40, 1, 1, 1, 1;\n"
                 : FOLIO_WG_D36(d)
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "l"(db));
#else
    (void)d; (void)a0; (void)a1; (void)a2; (void)a3; (void)db;
    __trap();
#endif
}
__device__ __forceinline__ void wg_reg_fence72(float (&d)[9][4])
{
#pragma unroll
    for (int j = 0; j < 9; j++)
        asm volatile("" : "+f"(d[j][0]), "+f"(d[j][1]), "+f"(d[j][2]), "+f"(d[j][3])::"memory");
}

/* ---- TMA (sm_90): window tiles as one bulk tensor copy a tile, issued by
 * one thread and completed on a per-stage mbarrier.  The tensor map's
 * 128-byte swizzle is the layout swz() describes, so the tiles are the same
 * bytes as the cp.async path writes (rows past the X range read as zeros;
 * rows past the window are real tokens, masked like before).  It saves each
 * thread the address arithmetic, the four cp.async and the proxy fence of a
 * tile (the bulk copy writes through the async proxy that wgmma reads). */
/* (mbarrier helpers: attn_cuda_internal.h) */
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const CUtensorMap *tm, int c0, int c1, uint32_t bar)
{
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n"
                 ::"r"(dst), "l"((uint64_t)tm), "r"(c0), "r"(c1), "r"(bar)
                 : "memory");
#else
    (void)dst; (void)tm; (void)c0; (void)c1; (void)bar;
    __trap();
#endif
}
#endif


struct Params {
    const __nv_bfloat16 *q, *k, *v;
    int64_t ld, x0, nx, q0, q1, n_doc;
    const __nv_bfloat16 *node_k, *node_v;
    int64_t ld_nodes, n_nodes;
    const int32_t *sel, *sel_n;
    int s_max;
    void *out;
    int64_t ld_out;
    float *node_mass;
    int H, W;
    float scale_log2; /* scale * log2(e): softmax in base 2 */
    int ref_self;     /* FAST's reference: each row's score against its own key (q = k), else 0 */
    int *n_redone;    /* optional: + 1 for every block and head FAST marks for the redo */
    int tma;          /* Q and window tiles by TMA (tm_q, tm_k, tm_v valid; warpgroup kernel only) */
    CUtensorMap tm_q, tm_k, tm_v; /* (64-byte aligned by its type) X rows [x0, x0 + nx) x H*64 columns, 64 x 64 boxes */
};

/* K/V tile stages in shared memory: 2 = double buffer, two CTA barriers a
 * tile; 3 = a ring where the refill of a stage is issued after the one
 * barrier of the next tile (every warp has then left the tile that used it
 * last). */
#ifndef FOLIO_ATTN_STAGES
#define FOLIO_ATTN_STAGES 2
#endif
constexpr int kStages = FOLIO_ATTN_STAGES;
static_assert(kStages == 2 || kStages == 3, "FOLIO_ATTN_STAGES is 2 or 3");

/* 1024-byte aligned: a 128-byte swizzle atom (wgmma descriptors).  With
 * k == v (HAS_V false) the K tile serves as V and no V stages are held.
 * ONES (warpgroup kernel): a tile of bf16 ones after the V stages, read as
 * columns 64..71 of the PV product (the rows' sums of P); the descriptor's
 * leading byte offset reaches it from any stage, so it must come last. */
template <bool HAS_V, bool ONES> struct Smem {
    alignas(1024) unsigned char q[kTile * 128];
    alignas(1024) unsigned char k[kStages][kTile * 128];
    alignas(1024) unsigned char v[HAS_V ? kStages : 1][HAS_V ? kTile * 128 : 16];
    alignas(1024) unsigned char ones[ONES ? kTile * 128 : 16];
    float red[4][kTile]; /* node_mass: per-warp column sums */
    alignas(8) uint64_t full[kStages]; /* TMA: a stage's window tile has landed */
    uint64_t qfull;                    /* TMA: the Q tile has landed             */
};

/* The warpgroup kernels' shared memory with the ones tile only where they
 * can run (sm_90a code): elsewhere their bodies compile empty and would not
 * fit the 48 KB of static shared memory with it and separate V stages. */
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
constexpr bool kOnesHere = true;
#else
constexpr bool kOnesHere = false;
#endif
template <bool KV_SAME, bool WG> using KernelSmem = Smem<!KV_SAME, WG && kOnesHere>;

/* Kernel shapes: MF m16 row fragments per warp (MF = 1: 4 warps x 16 rows;
 * MF = 2: 2 warps x 32 rows, FlashAttention-2's layout, where each K/V
 * fragment loaded from shared memory feeds two mma and the two row groups'
 * softmax chains interleave).  Either way a CTA = one 64-query block x one head. */
template <int MF> struct Shape {
    static constexpr int kWarps = 4 / MF;
    static constexpr int kThr = 32 * kWarps;
    static constexpr int kChunks = kTile * 8 / kThr;   /* 16-byte chunks per thread per tile */
};

/* Per-thread constants of the tile loads.  A tile is 64 rows of 8 16-byte
 * chunks; thread tid copies the kChunks consecutive chunks c0, c0 + 1, ...
 * of row lr = tid / (8 / kChunks): one contiguous run of one row (immediate
 * offsets), one row index deciding validity, one address per tile -- the
 * loads were ~90 instructions a tile with a chunk per 16 rows.  With c0 a
 * multiple of kChunks, chunk c0 + k of the swizzled tile is at
 * swz(lr, c0) ^ (k << 4).  Window rows: lo + lr + 64 t, valid while
 * 64 t + lr < nrows = hi - lo (< 2^31: the host caps the window). */
struct LoadPlan {
    const __nv_bfloat16 *wk; /* K address of window row lo + lr (clamped to the window), chunk c0 */
    uint32_t sw;             /* swz(lr, c0)                                                   */
    int lr;                  /* row in the tile                                               */
    int nrows;               /* hi - lo                                                       */
    int col;                 /* element of chunk c0 in a row: h * 64 + 8 c0                   */
    int trow;                /* lo - x0: the window's first row in the TMA tensor (X rows)      */
};

/* What a CTA (query block qb, head h) attends: live queries [qs, qe), window
 * tokens [lo, hi) in n_w tiles, then s summary nodes sel[0..s) in n_s tiles. */
struct BlockPlan {
    int64_t qs, qe, lo, hi;
    int n_w, s, n_s;
    const int32_t *sel;
};

/* The positions the tile loop needs, as ints relative to lo (the host keeps
 * the window below 2^29, so every one fits): the 64-bit BlockPlan then dies
 * after the set-up, which leaves registers to the tile loop. */
struct RelPlan {
    int nrows;    /* hi                                            */
    int rw;       /* this thread's first row (fragment 0, row g)   */
    int n_w;      /* window tiles                                  */
    int t_lo;     /* window tiles t < t_lo meet the band's lower edge (some key < qe - 1 - W) */
    int t_hi;     /* tiles t >= t_hi its upper edge or the document end (a key > qs + W, or >= hi) */
};

/* The plan from the live queries [qs, qe) and the window's end nrows (all
 * relative to lo) and this thread's row rwb in the block.  The masks' tile
 * bounds are found once per CTA (the per-tile test was ~10 instructions a
 * warp and tile): tile t (keys t0 = 64 t .. t0 + 63) needs the lower bound
 * iff t0 < qe - 1 - W, the upper one iff t0 + 64 > nrows or t0 + 63 > qs + W. */
__device__ __forceinline__ RelPlan rel_plan(int qs, int qe, int nrows, int rwb, int n_w, int W)
{
    RelPlan r;
    r.nrows = nrows;
    r.rw = qs + rwb;
    r.n_w = n_w;
    const int x = qe - 1 - W;
    r.t_lo = x > 0 ? (x + kTile - 1) / kTile : 0;
    r.t_hi = min(nrows / kTile, (qs + W + 1) / kTile);
    return r;
}

__device__ __forceinline__ BlockPlan block_plan(const Params &p, int qb, int h)
{
    BlockPlan b;
    b.qs = p.q0 + (int64_t)qb * kTile;
    b.qe = min(b.qs + kTile, p.q1);
    b.lo = max((int64_t)0, b.qs - p.W);
    b.hi = min(p.n_doc, b.qe - 1 + p.W + 1);
    b.n_w = (int)((b.hi - b.lo + kTile - 1) / kTile);
    b.s = 0;
    b.sel = nullptr;
    if (p.s_max > 0) {
        b.s = min(p.sel_n[(int64_t)qb * p.H + h], p.s_max);
        b.sel = p.sel + ((int64_t)qb * p.H + h) * p.s_max;
    }
    b.n_s = (b.s + kTile - 1) / kTile;
    return b;
}

template <int MF>
__device__ __forceinline__ LoadPlan load_plan(const Params &p, const BlockPlan &b, int tid, int h)
{
    constexpr int kC = Shape<MF>::kChunks, kPerRow = 8 / kC;
    LoadPlan lp;
    lp.lr = tid / kPerRow;
    const int c0 = (tid % kPerRow) * kC;
    lp.sw = swz(lp.lr, c0);
    lp.nrows = (int)(b.hi - b.lo);
    lp.col = h * kD + c0 * 8;
    lp.trow = (int)(b.lo - p.x0); /* < 2^31: the host uses TMA only then */
    const int64_t row = b.lo + min(lp.lr, lp.nrows - 1) - p.x0; /* a valid row for the base address */
    lp.wk = p.k + row * p.ld + lp.col;
    return lp;
}

/* One thread's run of a row: chunks c0 .. c0 + kChunks - 1 from g into the
 * tile at shared address sdst = tile + swz(lr, c0) (tiles are 1024-aligned,
 * so the XOR stays inside the row). */
template <int MF>
__device__ __forceinline__ void copy_run(uint32_t sdst, const __nv_bfloat16 *g, bool valid)
{
#pragma unroll
    for (int k = 0; k < Shape<MF>::kChunks; k++) cp_async16_s(sdst ^ (uint32_t)(k << 4), g + 8 * k, valid);
}

/* The Q tile, swizzled (rows beyond the live queries are zero). */
template <int MF>
__device__ __forceinline__ void load_q_tile(const Params &p, unsigned char *dst, const LoadPlan &lp, int64_t qs,
                                            int64_t qe)
{
    const bool valid = qs + lp.lr < qe;
    copy_run<MF>(smem_u32(dst) + lp.sw, p.q + (qs - p.x0 + (valid ? lp.lr : 0)) * p.ld + lp.col, valid);
}

/* Issue the loads of key tile `t` of this CTA into buffer `buf`.  Tiles
 * [0, n_w) are window tiles starting at token lo (one TMA copy when TMA and
 * p.tma, else cp.async); the rest gather summary nodes (cp.async). */
template <int MF, bool HAS_V, bool TMA = false, class SM>
__device__ __forceinline__ void load_kv_tile(const Params &p, SM &sm, const LoadPlan &lp, int buf, int t,
                                             int n_w, const int32_t *sel, int s, int h, bool want_v)
{
    want_v = want_v && HAS_V;
#if defined(FOLIO_WGMMA)
    if (TMA && t < n_w && p.tma) { /* one thread; everyone waits on sm.full[buf] */
        if (threadIdx.x == 0) {
            const uint32_t bar = smem_u32(&sm.full[buf]);
            mbar_expect_tx(bar, want_v ? 2 * kTile * 128 : kTile * 128);
            tma_load_2d(smem_u32(sm.k[buf]), &p.tm_k, h * kD, lp.trow + t * kTile, bar);
            if (want_v) tma_load_2d(smem_u32(sm.v[HAS_V ? buf : 0]), &p.tm_v, h * kD, lp.trow + t * kTile, bar);
        }
        return;
    }
#endif
    const uint32_t dk = smem_u32(sm.k[buf]) + lp.sw, dv = smem_u32(sm.v[HAS_V ? buf : 0]) + lp.sw;
    if (t < n_w) {
        const bool valid = t * kTile + lp.lr < lp.nrows;
        const __nv_bfloat16 *g = lp.wk + (valid ? (int64_t)(t * kTile) * p.ld : 0);
        copy_run<MF>(dk, g, valid);
        if (want_v) /* same row of V: k and v share the row stride and x0 */
            copy_run<MF>(dv, (const __nv_bfloat16 *)((uintptr_t)g + ((uintptr_t)p.v - (uintptr_t)p.k)), valid);
    } else {
        const int e = (t - n_w) * kTile + lp.lr;
        const int32_t node = e < s ? __ldg(sel + e) : -1;
        const bool valid = node >= 0 && node < p.n_nodes;
        const int64_t off = (int64_t)(valid ? node : 0) * p.ld_nodes + lp.col;
        copy_run<MF>(dk, p.node_k + off, valid);
        if (want_v) copy_run<MF>(dv, p.node_v + off, valid);
    }
}

/* S(16MF x 64) = Q K^T for this warp's rows, raw dot products.  koff[kk]:
 * this lane's ldmatrix row address for k-step kk (keys of n-tile pair jp are
 * jp * 2048 bytes further: an immediate offset). */
template <int MF>
__device__ __forceinline__ void qk_tile(float (&S)[MF][8][4], const uint32_t (&qf)[MF][4][4], uint32_t kbase,
                                        const uint32_t (&koff)[4])
{
#pragma unroll
    for (int f = 0; f < MF; f++)
#pragma unroll
        for (int j = 0; j < 8; j++) S[f][j][0] = S[f][j][1] = S[f][j][2] = S[f][j][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < 4; kk++) {
#pragma unroll
        for (int jp = 0; jp < 4; jp++) { /* pairs of 8-key n-tiles */
            uint32_t b0, b1, b2, b3;
            ldmatrix_x4(b0, b1, b2, b3, kbase + koff[kk] + jp * 2048);
#pragma unroll
            for (int f = 0; f < MF; f++) {
                mma_bf16(S[f][2 * jp], qf[f][kk][0], qf[f][kk][1], qf[f][kk][2], qf[f][kk][3], b0, b1);
                mma_bf16(S[f][2 * jp + 1], qf[f][kk][0], qf[f][kk][1], qf[f][kk][2], qf[f][kk][3], b2, b3);
            }
        }
    }
}

/* This lane's ldmatrix row addresses in a swizzled tile: koff[x] for the
 * K fragments of k-step x (qk_tile), voff[x] for the transposed V fragments
 * of dimension pair x (the PV product). */
__device__ __forceinline__ void lane_offsets(uint32_t (&koff)[4], uint32_t (&voff)[4], int lane)
{
    const int mi = lane >> 3, rr = lane & 7;
#pragma unroll
    for (int x = 0; x < 4; x++) {
        koff[x] = swz((mi >> 1) * 8 + rr, 2 * x + (mi & 1));
        voff[x] = swz((mi & 1) * 8 + rr, 2 * x + (mi >> 1));
    }
}

/* This warp's Q fragments (A operands of mma.sync) from the swizzled Q tile. */
template <int MF>
__device__ __forceinline__ void q_frags(uint32_t (&qf)[MF][4][4], uint32_t qbase, int warp, int lane)
{
    const int mi = lane >> 3, rr = lane & 7;
#pragma unroll
    for (int f = 0; f < MF; f++)
#pragma unroll
        for (int kk = 0; kk < 4; kk++) {
            const int row = warp * 16 * MF + f * 16 + (mi & 1) * 8 + rr;
            const int chunk = kk * 2 + (mi >> 1);
            ldmatrix_x4(qf[f][kk][0], qf[f][kk][1], qf[f][kk][2], qf[f][kk][3], qbase + swz(row, chunk));
        }
}

/* Mask of a summary tile: slots at or beyond s_left become -inf. */
__device__ __forceinline__ void mask_slots(float (&S)[8][4], int s_left, int tig)
{
#pragma unroll
    for (int j = 0; j < 8; j++)
#pragma unroll
        for (int e = 0; e < 4; e++)
            if (j * 8 + tig * 2 + (e & 1) >= s_left) S[j][e] = -INFINITY;
}

/* The band mask in 32-bit arithmetic: key kj = t0 + col is attended by row
 * i = r0 (+ 8) iff |kj - i| <= W and kj < hi (kj >= lo holds for every
 * window tile).  dd = t0 - r0 and hl = hi - t0 come in as ints (the host
 * keeps W < 2^29, so every sum below fits).  With x = 8 j + (e & 1) the
 * element's column less the thread's 2 tig (a compile-time constant), a
 * row's valid x form one range [lo, hi] (lo from the band's lower edge, hi
 * the smaller of its upper edge and the document end), so an element costs
 * a compare with an immediate and a select per bound tested; LO / HI say
 * which bounds can cut this tile (the first window tile only meets the
 * lower edge, the last only the upper one when W >= 64).  Four 64-bit
 * compares an element cost 5-9 % before the 32-bit form; the edge tiles'
 * ~136 instructions a warp with both bounds and an add per element were ~9 %
 * of the kernel's instructions in `local` (ncu source counters, H200). */
template <bool LO, bool HI>
__device__ __forceinline__ void mask_band(float (&S)[8][4], int dd, int hl, int W, int tig)
{
    const int lo0 = -W - dd - 2 * tig;      /* kj - i >= -W */
    const int up0 = W - dd - 2 * tig;       /* kj - i <= W  */
    const int he = hl - 2 * tig - 1;        /* kj < hi      */
    const int lo[2] = {lo0, lo0 + 8}, hi[2] = {min(up0, he), min(up0 + 8, he)};
#pragma unroll
    for (int j = 0; j < 8; j++) {
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int x = j * 8 + (e & 1);
            bool cut = false;
            if (LO) cut |= x < lo[e >> 1];
            if (HI) cut |= x > hi[e >> 1];
            if (cut) S[j][e] = -INFINITY;
        }
    }
}

/* mask_band on each of this thread's row fragments of window tile t0. */
template <bool LO, bool HI, int MF>
__device__ __forceinline__ void mask_band_rows(float (&S)[MF][8][4], int t0, const RelPlan &r, int W, int tig)
{
#pragma unroll
    for (int f = 0; f < MF; f++) mask_band<LO, HI>(S[f], t0 - (r.rw + 16 * f), r.nrows - t0, W, tig);
}

/* ------------------------------------------------------------ per-tile steps
 * Shared by the mma.sync kernel and the warpgroup kernel: the fragment
 * layout (rows rw + 16 f and rw + 16 f + 8, columns 8 j + 2 tig + {0, 1})
 * is the same in both. */

/* Masks tile t where needed: window tiles crossing a band or document edge,
 * and the last summary tile beyond s. */
template <int MF>
__device__ __forceinline__ void mask_tile_if_needed(float (&S)[MF][8][4], int t, const RelPlan &r, int W, int s,
                                                    int tig)
{
    /* Mask only where needed: band/document edges and the last summary tile. */
    if (t < r.n_w) {
        const int t0 = t * kTile; /* relative to lo, as every position here */
        /* no key of the tile below the last row's band / above the first
         * row's band or past the document: uniform over the CTA */
        const bool lo_in = t >= r.t_lo;
        const bool hi_in = t < r.t_hi;
        if (!lo_in && !hi_in) mask_band_rows<true, true>(S, t0, r, W, tig);
        else if (!lo_in) mask_band_rows<true, false>(S, t0, r, W, tig);
        else if (!hi_in) mask_band_rows<false, true>(S, t0, r, W, tig);
    } else {
        const int s_left = s - (t - r.n_w) * kTile;
        if (s_left < kTile)
#pragma unroll
            for (int f = 0; f < MF; f++) mask_slots(S[f], s_left, tig);
    }
}

/* ------------------------------------------------------------ softmax
 * Softmax is exact for any per-row reference r (P = 2^(S sl - r), O and the
 * sums scaled alike) as long as P and the sums stay finite and normal.  So
 * the tile loop takes a reference fixed before it: no row max, no rescale,
 * no per-tile test.  With the caller's bound on the row norms (row_norm_max:
 * every layer after the first, whose rows are at norm sqrt(d_h)) r = 0:
 * those rows score their own key highest, at beta sqrt(d_h) log2(e) (11.5
 * for beta = 1), so a row's sum lies within [1, 2^20], far from the limits
 * of fp32 and bf16 (2^-126, 2^128).  Without it (the first layer: norm
 * sqrt(d) x IDF weight, own scores of 8 w^2 and more) r is each row's own
 * score (q = k: self_reference), so the own key adds exactly 1 to the sum
 * and the others stay near it; r = 0 there overflowed most blocks.  The
 * rows' sums come from the tensor cores (PV against a ones
 * tile: O's 9th 8-column block), so a tile's softmax is an FMA, an
 * exponential and half a pack an element: 80 instructions a warp, against
 * 112 plus the reference's upkeep with a running reference.  After the last
 * tile every live row is checked: sum within [2^-90, 2^120] (it bounds every
 * P; 2^-90 keeps the largest terms 2^24 above the flush-to-zero limit) and O
 * finite.  If a live row failed (CTA-wide: the warpgroup's MMAs are
 * shared), the block writes nothing but a NaN into its first output element,
 * and a second kernel (sparse_redo_kernel, launched after it on the same
 * stream) finds the marked blocks and redoes them with a MAX pass (scores
 * only: each row's true maximum M) and the same loop with r = M sl, where
 * P <= 1 and the sum >= 1: nothing can overflow.  Extreme inputs take it
 * (test_cuda_attn: extreme_scores_own_reference_or_redo, with a wrong bound).  In one kernel,
 * any fallback -- an online softmax, the MAX pass and a second run of the
 * PV loop (even at one call site, inside a retry loop), an out-of-line
 * call -- cost the FAST loop: spills at 96 registers, wgmma serialized
 * (C7510/C7511), or descriptors moved to uniform registers at every MMA
 * (R2UR), 4 % of its time (H200, bench/GPU_NOTES.md twelfth session).
 * Earlier softmax variants (online, lazy rescale, no max while per-tile
 * sums stayed under 2^16 with a per-warp recompute): bench/GPU_NOTES.md. */

/* P = 2^(S sl - r) packed to bf16, the A-operand layout of the PV product
 * (one FMA an element whether r is 0 or not: a multiply costs the same). */
template <int MF>
__device__ __forceinline__ void softmax_p(const float (&S)[MF][8][4], uint32_t (&pf)[MF][8][2], float sl,
                                          const float (&r)[MF][2])
{
#pragma unroll
    for (int f = 0; f < MF; f++) {
        const float r0 = r[f][0], r1 = r[f][1];
#pragma unroll
        for (int j = 0; j < 8; j++) {
            pf[f][j][0] = pack_bf16(exp2f(fmaf(S[f][j][0], sl, -r0)), exp2f(fmaf(S[f][j][1], sl, -r0)));
            pf[f][j][1] = pack_bf16(exp2f(fmaf(S[f][j][2], sl, -r1)), exp2f(fmaf(S[f][j][3], sl, -r1)));
        }
    }
}

/* FAST's per-row reference when p.ref_self: the row's score against its own
 * key (q = k), |q|^2 sl, from the Q tile in shared memory (a quad's four
 * threads take 16 of the 64 dims each; rows rwb + 16 f (+ 8) as in S).
 * Within a few units of the row's true maximum for real rows of any norm,
 * so P stays far inside fp32 and bf16 where r = 0 would overflow (scores
 * of rows at norm 8w reach 8 w^2; IDF weights w of 3 or more do). */
template <int MF>
__device__ __forceinline__ void self_reference(float (&m)[MF][2], uint32_t qbase, int rwb, int tig, float sl)
{
#pragma unroll
    for (int f = 0; f < MF; f++)
#pragma unroll
        for (int r = 0; r < 2; r++) {
            const int row = rwb + 16 * f + 8 * r;
            float acc = 0.f;
#pragma unroll
            for (int c = 2 * tig; c < 2 * tig + 2; c++) {
                uint32_t w[4];
                asm volatile("ld.shared.v4.b32 {%0, %1, %2, %3}, [%4];\n"
                             : "=r"(w[0]), "=r"(w[1]), "=r"(w[2]), "=r"(w[3])
                             : "r"(qbase + swz(row, c))
                             : "memory");
#pragma unroll
                for (int k = 0; k < 4; k++) {
                    const float lo = __uint_as_float(w[k] << 16), hi = __uint_as_float(w[k] & 0xffff0000u);
                    acc = fmaf(lo, lo, acc);
                    acc = fmaf(hi, hi, acc);
                }
            }
            acc += __shfl_xor_sync(0xffffffffu, acc, 1);
            acc += __shfl_xor_sync(0xffffffffu, acc, 2);
            m[f][r] = acc * sl;
        }
}

/* MAX: this thread's running maxima of its two rows per fragment (raw scores). */
template <int MF>
__device__ __forceinline__ void row_max(const float (&S)[MF][8][4], float (&mx)[MF][2])
{
#pragma unroll
    for (int f = 0; f < MF; f++)
#pragma unroll
        for (int j = 0; j < 8; j++) {
            mx[f][0] = fmaxf(mx[f][0], fmaxf(S[f][j][0], S[f][j][1]));
            mx[f][1] = fmaxf(mx[f][1], fmaxf(S[f][j][2], S[f][j][3]));
        }
}

/* FAST's check of this thread's live rows (row rw + 16 f (+ 8) < qe): the
 * sum (O's 9th block, every column the same) within [2^-90, 2^120] and the
 * thread's O columns finite (their sum is, which NaN and inf would break);
 * bit tests, so that no compiler flag can assume them away. */
template <int MF>
__device__ __forceinline__ bool rows_out_of_range(const float (&O)[MF][9][4], int64_t rw, int64_t qe)
{
    bool bad = false;
#pragma unroll
    for (int f = 0; f < MF; f++)
#pragma unroll
        for (int r = 0; r < 2; r++) {
            const uint32_t lb = __float_as_uint(O[f][8][2 * r]); /* >= 0: sign bit clear unless NaN games */
            float acc = 0.f;
#pragma unroll
            for (int j = 0; j < 8; j++) acc += O[f][j][2 * r] + O[f][j][2 * r + 1];
            const bool ok = lb >= 0x12800000u /* 2^-90 */ && lb <= 0x7b800000u /* 2^120 */ &&
                            (__float_as_uint(acc) & 0x7f800000u) != 0x7f800000u;
            bad |= rw + 16 * f + 8 * r < qe && !ok;
        }
    return bad;
}

/* 1 / row sum in inv (the sums are O's 9th block: every column of it holds
 * its row's sum) and the normalized rows of the live queries written to p.out. */
template <bool OUT_BF16, int MF>
__device__ __forceinline__ void finish_rows(const Params &p, const float (&O)[MF][9][4], float (&inv)[MF][2],
                                            int64_t rw, int64_t qe, int h, int tig)
{
#pragma unroll
    for (int f = 0; f < MF; f++)
#pragma unroll
        for (int r = 0; r < 2; r++) {
            const float x = O[f][8][2 * r];
            inv[f][r] = x > 0.f ? 1.f / x : 0.f;
        }

    /* Epilogue: out rows (i - q0), only live queries. */
#pragma unroll
    for (int f = 0; f < MF; f++) {
        const int64_t i0 = rw + 16 * f, i1 = i0 + 8;
        const bool w0 = i0 < qe, w1 = i1 < qe;
#pragma unroll
        for (int j = 0; j < 8; j++) {
            const int col = h * kD + j * 8 + tig * 2;
            if (OUT_BF16) {
                __nv_bfloat16 *o = (__nv_bfloat16 *)p.out;
                if (w0)
                    *reinterpret_cast<uint32_t *>(o + (i0 - p.q0) * p.ld_out + col) =
                        pack_bf16(O[f][j][0] * inv[f][0], O[f][j][1] * inv[f][0]);
                if (w1)
                    *reinterpret_cast<uint32_t *>(o + (i1 - p.q0) * p.ld_out + col) =
                        pack_bf16(O[f][j][2] * inv[f][1], O[f][j][3] * inv[f][1]);
            } else {
                float *o = (float *)p.out;
                if (w0)
                    *reinterpret_cast<float2 *>(o + (i0 - p.q0) * p.ld_out + col) =
                        make_float2(O[f][j][0] * inv[f][0], O[f][j][1] * inv[f][0]);
                if (w1)
                    *reinterpret_cast<float2 *>(o + (i1 - p.q0) * p.ld_out + col) =
                        make_float2(O[f][j][2] * inv[f][1], O[f][j][3] * inv[f][1]);
            }
        }
    }
}

/* node_mass of one summary tile: each column's final softmax weight summed
 * over this warp's live rows, into red[64] (one slot per column). */
template <int MF>
__device__ __forceinline__ void mass_columns(const float (&S)[MF][8][4], const float (&m)[MF][2],
                                             const float (&inv)[MF][2], float sl, int64_t rw, int64_t qe, int g,
                                             int tig, float *red)
{
#pragma unroll
    for (int j = 0; j < 8; j++) {
        float c0 = 0.f, c1 = 0.f;
#pragma unroll
        for (int f = 0; f < MF; f++) {
            const bool w0 = rw + 16 * f < qe, w1 = rw + 16 * f + 8 < qe;
            c0 += (w0 ? exp2f(fmaf(S[f][j][0], sl, -m[f][0])) * inv[f][0] : 0.f) +
                  (w1 ? exp2f(fmaf(S[f][j][2], sl, -m[f][1])) * inv[f][1] : 0.f);
            c1 += (w0 ? exp2f(fmaf(S[f][j][1], sl, -m[f][0])) * inv[f][0] : 0.f) +
                  (w1 ? exp2f(fmaf(S[f][j][3], sl, -m[f][1])) * inv[f][1] : 0.f);
        }
#pragma unroll
        for (int off = 4; off < 32; off <<= 1) {
            c0 += __shfl_xor_sync(0xffffffffu, c0, off);
            c1 += __shfl_xor_sync(0xffffffffu, c1, off);
        }
        if (g == 0) {
            red[j * 8 + tig * 2] = c0;
            red[j * 8 + tig * 2 + 1] = c1;
        }
    }
}

#ifndef FOLIO_ATTN_MIN_BLOCKS
#define FOLIO_ATTN_MIN_BLOCKS 4 /* CTAs per SM the register budget is cut for (MF = 1) */
#endif
#ifndef FOLIO_ATTN_MIN_BLOCKS2
#define FOLIO_ATTN_MIN_BLOCKS2 4 /* the same for MF = 2 */
#endif
#ifndef FOLIO_ATTN_WG_SIMPLE_MIN_BLOCKS
#define FOLIO_ATTN_WG_SIMPLE_MIN_BLOCKS 5 /* the warpgroup kernel: 96 registers, 5 CTAs per SM (H200: fastest) */
#endif
/* Query block qb of head h: FAST (REDO false; see "softmax"), which marks
 * the block (a NaN in its first output) and writes nothing else when a live
 * row fails its check, or the MAX and REF passes (REDO: the redo kernel's,
 * with cp.async loads -- no mbarriers to carry from block to block). */
template <bool OUT_BF16, bool KV_SAME, int MF, bool WG, bool REDO, class SM>
__device__ __forceinline__ void attend_block(const Params &p, SM &sm, int qb, int h)
{
    using SH = Shape<MF>;
    static_assert(!WG || MF == 1, "the warpgroup path is 4 warps x 16 rows");
#if !defined(FOLIO_WGMMA)
    static_assert(!WG, "wgmma needs an sm_90a build (FOLIO_WGMMA)");
#endif
    constexpr bool TMA = WG && !REDO; /* window tiles and Q by TMA when p.tma */
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int g = lane >> 2, tig = lane & 3;

    const BlockPlan bp = block_plan(p, qb, h);
    const int64_t qs = bp.qs, qe = bp.qe;
    const int n_w = bp.n_w, s = bp.s, n_s = bp.n_s, n_t = bp.n_w + bp.n_s;
    const int32_t *sel = bp.sel;
    const LoadPlan lp = load_plan<MF>(p, bp, tid, h);

#if defined(FOLIO_WGMMA)
    if (WG && kOnesHere) { /* the ones tile (bf16 1.0 everywhere: its swizzle does not matter), seen by the
               * tensor cores after the proxy fence and the first barrier below or in the loop */
        const uint32_t o = smem_u32(sm.ones) + tid * (kTile * 128 / SH::kThr);
#pragma unroll
        for (int k = 0; k < kTile * 128 / SH::kThr; k += 16)
            asm volatile("st.shared.v4.b32 [%0], {%1, %1, %1, %1};\n" ::"r"(o + k), "r"(0x3F803F80u) : "memory");
        wg_proxy_fence();
    }
    if (TMA && p.tma) { /* the barriers, then Q by TMA too (rows past the queries: read, never written out) */
        if (tid == 0) {
#pragma unroll
            for (int b = 0; b < kStages; b++) mbar_init(smem_u32(&sm.full[b]), 1);
            mbar_init(smem_u32(&sm.qfull), 1);
            mbar_init_fence();
        }
        __syncthreads();
        if (tid == 0) {
            const uint32_t bar = smem_u32(&sm.qfull);
            mbar_expect_tx(bar, kTile * 128);
            tma_load_2d(smem_u32(sm.q), &p.tm_q, h * kD, (int)(qs - p.x0), bar);
        }
    } else
#endif
        load_q_tile<MF>(p, sm.q, lp, qs, qe);
    /* the first tile(s) in flight (again for each later pass) */
    auto first_loads = [&]() {
        load_kv_tile<MF, !KV_SAME, TMA>(p, sm, lp, 0, 0, n_w, sel, s, h, !KV_SAME);
        cp_async_commit();
        if (kStages == 3) { /* tile 1 in flight too; a group is committed even when empty */
            if (n_t > 1) load_kv_tile<MF, !KV_SAME, TMA>(p, sm, lp, 1, 1, n_w, sel, s, h, !KV_SAME);
            cp_async_commit();
        }
    };
    first_loads();

    /* O: 64 output columns, then (block 8) the rows' softmax sums; m: the
     * rows' reference r (base 2; see "softmax") */
    float O[MF][9][4];
    float m[MF][2];
#pragma unroll
    for (int f = 0; f < MF; f++)
#pragma unroll
        for (int j = 0; j < 9; j++) O[f][j][0] = O[f][j][1] = O[f][j][2] = O[f][j][3] = 0.f;
    /* S = Q K^T of the key tile in stage kb, by the kernel's path.  The
     * descriptors of stage 0 are made once; a stage is 8 KB further (+512
     * in the address field), a k-step of V two 8-row atoms (+128); the V
     * descriptors' leading offset reaches the ones tile from each stage
     * (a stage further: +512 in the address field, -512 in the offset's;
     * no borrow, the offset stays >= 512). */
#if defined(FOLIO_WGMMA)
    const uint64_t dq0 = gmma_desc(smem_u32(sm.q), 16), dk0 = gmma_desc(smem_u32(sm.k[0]), 16);
    const uint32_t v0 = smem_u32(KV_SAME ? sm.k[0] : sm.v[0]);
    const uint64_t dv0 = gmma_desc(v0, smem_u32(sm.ones) - v0);
    constexpr uint64_t dvs = (uint64_t)(kTile * 128 / 16) - ((uint64_t)(kTile * 128 / 16) << 16);
#endif
    /* S of the tile in stage kb: by the warpgroup, or by mma.sync from this
     * warp's Q fragments qf and ldmatrix offsets koff */
    auto scores = [&](float (&SS)[MF][8][4], int kb, const uint32_t (&qf)[MF][4][4], const uint32_t (&koff)[4]) {
#if defined(FOLIO_WGMMA)
        if (WG) qk_tile_wg(SS[0], dq0, dk0 + (uint64_t)(kb * (kTile * 128 / 16)));
        else
#endif
            qk_tile<MF>(SS, qf, smem_u32(sm.k[kb]), koff);
    };
    const int rwb = warp * 16 * MF + g; /* row of fragment f within the block: rwb + 16 f (+ 8) */
    const RelPlan rp = rel_plan((int)(qs - bp.lo), (int)(qe - bp.lo), (int)(bp.hi - bp.lo), rwb, n_w, p.W);
    const float sl = p.scale_log2;

    /* One pass over the tiles: with PV (MAX false) or scores only, for the
     * rows' maxima in m (MAX: see "softmax"). */
    auto tile_loop = [&](auto max_tag) {
        constexpr bool MAX = decltype(max_tag)::value;
        uint32_t qf[MF][4][4], koff[4], voff[4]; /* the mma.sync kernel's: Q fragments, ldmatrix offsets */
        if (!WG) lane_offsets(koff, voff, lane);
        for (int t = 0; t < n_t; t++) {
            if (kStages == 2) {
                if (t + 1 < n_t) {
                    load_kv_tile<MF, !KV_SAME, TMA>(p, sm, lp, (t + 1) & 1, t + 1, n_w, sel, s, h, !KV_SAME);
                    /* a TMA window tile is no cp.async group: waited on its mbarrier */
                    if (!(TMA && p.tma) || t + 1 >= n_w) {
                        cp_async_commit();
                        cp_async_wait<1>();
                    }
                } else {
                    cp_async_wait<0>();
                }
            } else {
                cp_async_wait<1>(); /* all but the newest group: tile t has landed */
            }
            /* A TMA tile (FAST: one pass): every thread waits for its bytes
             * on the stage's mbarrier (the stage's k-th use completes phase
             * k & 1), and no barrier is needed at 2 stages (the end of the
             * previous tile had one; before tile 0, the mbarrier set-up had
             * one); the Q tile comes the same way when p.tma (else by
             * cp.async, like the gathered tiles: proxy fence and barrier). */
            const bool tma_tile = TMA && p.tma && t < n_w;
#if defined(FOLIO_WGMMA)
            if (tma_tile) {
                const int st = t % kStages;
                if (t == 0) mbar_wait(smem_u32(&sm.qfull), 0u);
                mbar_wait(smem_u32(&sm.full[st]), (uint32_t)(t / kStages) & 1u);
            }
#endif
            if (!tma_tile || kStages == 3) {
#if defined(FOLIO_WGMMA)
                if (WG && !tma_tile) wg_proxy_fence(); /* cp.async wrote what the tensor cores read next */
#endif
                __syncthreads();
            }
            /* Q has landed (its mbarrier, or the first group and the barrier above) */
            if (!REDO && !MAX && t == 0 && p.ref_self) self_reference<MF>(m, smem_u32(sm.q), rwb, tig, sl);
            if (kStages == 3) { /* every warp is past tile t - 1: its stage takes tile t + 2 */
                if (t + 2 < n_t)
                    load_kv_tile<MF, !KV_SAME, TMA>(p, sm, lp, (t + 2) % kStages, t + 2, n_w, sel, s, h, !KV_SAME);
                cp_async_commit();
            }
            if (!WG && t == 0) q_frags<MF>(qf, smem_u32(sm.q), warp, lane);
            const int buf = kStages == 2 ? (t & 1) : t % kStages;
            float S[MF][8][4];
            scores(S, buf, qf, koff);

            mask_tile_if_needed<MF>(S, t, rp, p.W, s, tig);

            if (MAX) {
                row_max<MF>(S, m);
                if (kStages == 2) __syncthreads(); /* as at the end of a PV tile below */
                continue;
            }
            uint32_t pf[MF][8][2];
            softmax_p<MF>(S, pf, sl, m); /* FAST: m = 0, or each row's self score (p.ref_self) */

            /* O += P [V | 1]: P from registers (C layout == A layout); V by
             * descriptor (wgmma) or ldmatrix.trans (mma.sync), the ones as
             * a tile (wgmma) or constant B fragments (mma.sync). */
            const uint32_t vbase = smem_u32(KV_SAME ? sm.k[buf] : sm.v[KV_SAME ? 0 : buf]);
#if defined(FOLIO_WGMMA)
            if (WG) {
                const uint64_t dv = dv0 + (uint64_t)buf * dvs;
                wg_reg_fence72(O[0]);
                wg_fence();
#pragma unroll
                for (int kk = 0; kk < 4; kk++) /* 16 keys = two 8-row atoms */
                    wgmma_rs72(O[0], pf[0][2 * kk][0], pf[0][2 * kk][1], pf[0][2 * kk + 1][0], pf[0][2 * kk + 1][1],
                               dv + (uint64_t)(kk * (2048 / 16)));
                wg_commit();
                wg_wait0();
                wg_reg_fence72(O[0]);
                /* P is read asynchronously: keep its registers until the wait */
#pragma unroll
                for (int j = 0; j < 8; j++) asm volatile("" : "+r"(pf[0][j][0]), "+r"(pf[0][j][1])::"memory");
            } else
#endif
#pragma unroll
            for (int kk = 0; kk < 4; kk++) { /* 16 keys */
#pragma unroll
                for (int jp = 0; jp < 4; jp++) { /* pairs of 8-wide dim tiles */
                    uint32_t b0, b1, b2, b3;
                    ldmatrix_x4_trans(b0, b1, b2, b3, vbase + voff[jp] + kk * 2048);
#pragma unroll
                    for (int f = 0; f < MF; f++) {
                        mma_bf16(O[f][2 * jp], pf[f][2 * kk][0], pf[f][2 * kk][1], pf[f][2 * kk + 1][0],
                                 pf[f][2 * kk + 1][1], b0, b1);
                        mma_bf16(O[f][2 * jp + 1], pf[f][2 * kk][0], pf[f][2 * kk][1], pf[f][2 * kk + 1][0],
                                 pf[f][2 * kk + 1][1], b2, b3);
                    }
                }
#pragma unroll
                for (int f = 0; f < MF; f++) /* the row sums: B = ones */
                    mma_bf16(O[f][8], pf[f][2 * kk][0], pf[f][2 * kk][1], pf[f][2 * kk + 1][0], pf[f][2 * kk + 1][1],
                             0x3F803F80u, 0x3F803F80u);
            }
            if (kStages == 2) __syncthreads(); /* buffer `buf` is refilled by the next iteration's prefetch */
        }
        if (kStages == 3) {
            cp_async_wait<0>(); /* only empty groups can be pending; keep the count clean */
            __syncthreads();    /* stage 0 is reused below while a warp may still read the last tile */
        }
    };

    /* absolute rows again, from the block index (not kept through the loops) */
    auto live_rows = [&](int64_t &rw, int64_t &qe_a) {
        const int64_t qs_a = p.q0 + (int64_t)qb * kTile;
        qe_a = min(qs_a + kTile, p.q1);
        rw = qs_a + rwb;
    };
    int64_t rw, qe_a;
    if (!REDO) {
#pragma unroll
        for (int f = 0; f < MF; f++) m[f][0] = m[f][1] = 0.f; /* FAST's reference, unless p.ref_self */
        tile_loop(std::false_type{});
        live_rows(rw, qe_a);
        if (__syncthreads_or(rows_out_of_range<MF>(O, rw, qe_a))) { /* rare: mark the block for the redo kernel */
            if (tid == 0) {
                if (p.n_redone) atomicAdd(p.n_redone, 1);
                const int64_t at = (int64_t)qb * kTile * p.ld_out + (int64_t)h * kD;
                if (OUT_BF16) ((uint16_t *)p.out)[at] = 0x7fc0u;
                else ((uint32_t *)p.out)[at] = 0x7fc00000u;
            }
            return;
        }
    } else {
#pragma unroll
        for (int f = 0; f < MF; f++) m[f][0] = m[f][1] = -INFINITY;
        tile_loop(std::true_type{});
#pragma unroll
        for (int f = 0; f < MF; f++)
#pragma unroll
            for (int r = 0; r < 2; r++) { /* the row's maximum over its quad, scaled; 0 for a row with none */
                float x = fmaxf(m[f][r], __shfl_xor_sync(0xffffffffu, m[f][r], 1));
                x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
                m[f][r] = x == -INFINITY ? 0.f : x * sl;
            }
        first_loads();
        tile_loop(std::false_type{});
        live_rows(rw, qe_a);
    }

    float inv[MF][2];
    finish_rows<OUT_BF16, MF>(p, O, inv, rw, qe_a, h, tig);

    /* node_mass: re-score the summary tiles with the final reference and sum. */
    if (p.node_mass && n_s > 0) {
        float *nm = p.node_mass + ((int64_t)qb * p.H + h) * p.s_max;
        uint32_t qf[MF][4][4], koff[4], voff[4];
        if (!WG) {
            lane_offsets(koff, voff, lane);
            q_frags<MF>(qf, smem_u32(sm.q), warp, lane);
        }
        for (int ts = 0; ts < n_s; ts++) {
            load_kv_tile<MF, !KV_SAME>(p, sm, lp, 0, n_w + ts, n_w, sel, s, h, false);
            cp_async_commit();
            cp_async_wait<0>();
#if defined(FOLIO_WGMMA)
            if (WG) wg_proxy_fence();
#endif
            __syncthreads();
            float S[MF][8][4];
            scores(S, 0, qf, koff);
            const int s_left = s - ts * kTile;
#pragma unroll
            for (int f = 0; f < MF; f++) mask_slots(S[f], s_left, tig);
            mass_columns<MF>(S, m, inv, sl, rw, qe_a, g, tig, sm.red[warp]);
            __syncthreads();
            for (int c = tid; c < kTile && c < s_left; c += SH::kThr) {
                float acc = sm.red[0][c];
#pragma unroll
                for (int w = 1; w < SH::kWarps; w++) acc += sm.red[w][c];
                nm[ts * kTile + c] = acc;
            }
            __syncthreads();
        }
    }
}


#define FOLIO_ATTN_BOUNDS(MF, WG) \
    __launch_bounds__(Shape<MF>::kThr, WG ? FOLIO_ATTN_WG_SIMPLE_MIN_BLOCKS \
                                          : (MF == 1 ? FOLIO_ATTN_MIN_BLOCKS : FOLIO_ATTN_MIN_BLOCKS2))

/* One CTA a query block and head: FAST. */
template <bool OUT_BF16, bool KV_SAME, int MF, bool WG>
__global__ void FOLIO_ATTN_BOUNDS(MF, WG) sparse_fwd_kernel(const __grid_constant__ Params p)
{
    __shared__ KernelSmem<KV_SAME, WG> sm;
    attend_block<OUT_BF16, KV_SAME, MF, WG, false>(p, sm, blockIdx.x, blockIdx.y);
}

/* After it, on the same stream: the blocks FAST marked (their first output
 * element NaN: a block whose output is NaN anyway, from NaN inputs, comes
 * out the same again), found by a grid-stride scan of one element a block
 * and head (a thread each) and redone one by one by the CTA that found them.
 * A few microseconds when there are none: one launch of a few CTAs an SM. */
template <bool OUT_BF16, bool KV_SAME, int MF, bool WG>
__global__ void __launch_bounds__(Shape<MF>::kThr, 2) /* registers to spare: its passes never spill */
sparse_redo_kernel(const __grid_constant__ Params p, int nqb)
{
    __shared__ KernelSmem<KV_SAME, WG> sm;
    __shared__ int found[Shape<MF>::kThr];
    __shared__ int n_found;
    const int64_t pairs = (int64_t)nqb * p.H;
    for (int64_t base = (int64_t)blockIdx.x * Shape<MF>::kThr; base < pairs;
         base += (int64_t)gridDim.x * Shape<MF>::kThr) {
        if (threadIdx.x == 0) n_found = 0;
        __syncthreads();
        const int64_t i = base + threadIdx.x;
        if (i < pairs) {
            const int64_t at = (i / p.H) * kTile * p.ld_out + (i % p.H) * kD;
            const bool nan = OUT_BF16 ? (((const uint16_t *)p.out)[at] & 0x7fffu) > 0x7f80u
                                      : (((const uint32_t *)p.out)[at] & 0x7fffffffu) > 0x7f800000u;
            if (nan) found[atomicAdd(&n_found, 1)] = (int)(i - base);
        }
        __syncthreads();
        const int n = n_found;
        for (int k = 0; k < n; k++) {
            const int64_t j = base + found[k];
            attend_block<OUT_BF16, KV_SAME, MF, WG, true>(p, sm, (int)(j / p.H), (int)(j % p.H));
            __syncthreads(); /* the tiles are reused */
        }
        __syncthreads(); /* every thread has read n_found before it is reset */
    }
}


/* ------------------------------------------------------------ small kernels */

__global__ void f32_to_bf16_kernel(const float *src, __nv_bfloat16 *dst, int64_t n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        dst[i] = __float2bfloat16_rn(src[i]);
}
__global__ void bf16_to_f32_kernel(const __nv_bfloat16 *src, float *dst, int64_t n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        dst[i] = __bfloat162float(src[i]);
}

int grid_for(int64_t n, int threads)
{
    int64_t b = (n + threads - 1) / threads;
    return (int)std::min<int64_t>(std::max<int64_t>(b, 1), 65535 * 8);
}

} // namespace

/* ------------------------------------------------------------ public API */

extern "C" bool folio_cuda_available(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();
        return false;
    }
    return n > 0;
}

extern "C" folio_status_t folio_cuda_f32_to_bf16(const float *src, uint16_t *dst, int64_t n, void *stream)
{
    if (n <= 0) return FOLIO_OK;
    f32_to_bf16_kernel<<<grid_for(n, 256), 256, 0, (cudaStream_t)stream>>>(src, (__nv_bfloat16 *)dst, n);
    FOLIO_CUDA_CHECK(cudaGetLastError());
    return FOLIO_OK;
}

extern "C" folio_status_t folio_cuda_bf16_to_f32(const uint16_t *src, float *dst, int64_t n, void *stream)
{
    if (n <= 0) return FOLIO_OK;
    bf16_to_f32_kernel<<<grid_for(n, 256), 256, 0, (cudaStream_t)stream>>>((const __nv_bfloat16 *)src, dst, n);
    FOLIO_CUDA_CHECK(cudaGetLastError());
    return FOLIO_OK;
}

#if defined(FOLIO_WGMMA)
/* The driver's tensor-map encoder, fetched through the runtime so that the
 * library needs no -lcuda; NULL when the driver lacks it.  Looked up once
 * per launch, for all of its maps. */
static PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder(void)
{
    void *fn = nullptr;
    cudaDriverEntryPointQueryResult q;
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &q) != cudaSuccess ||
        q != cudaDriverEntryPointSuccess) {
        (void)cudaGetLastError();
        return nullptr;
    }
    return (PFN_cuTensorMapEncodeTiled_v12000)fn;
}

/* A 2-D tensor map over `rows` rows of `cols` bf16 (row stride ld
 * elements) in 64 x 64 boxes with the 128-byte swizzle of swz(); false when
 * the driver refuses it (the kernel then loads by cp.async). */
static bool tensor_map_2d(PFN_cuTensorMapEncodeTiled_v12000 enc, CUtensorMap *tm, const void *base, int64_t cols,
                          int64_t rows, int64_t ld)
{
    const cuuint64_t dims[2] = {(cuuint64_t)cols, (cuuint64_t)rows}, strides[1] = {(cuuint64_t)ld * 2};
    const cuuint32_t box[2] = {64, 64}, es[2] = {1, 1};
    return enc(tm, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<void *>(base), dims, strides, box, es,
               CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
               CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}
#endif

/* True when the warpgroup kernel runs: an sm_90a build on a compute
 * capability 9.0 device (the current one). */
static bool use_wgmma(void)
{
#if defined(FOLIO_WGMMA) && !defined(FOLIO_ATTN_NO_WGMMA)
    int dev = 0, major = 0, minor = 0;
    return cudaGetDevice(&dev) == cudaSuccess &&
           cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess &&
           cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) == cudaSuccess && major == 9 &&
           minor == 0;
#else
    return false;
#endif
}

#ifndef FOLIO_ATTN_MF
#define FOLIO_ATTN_MF 2 /* row fragments per warp; see Shape<MF> */
#endif

cudaError_t folio_cuda_preload_sparse(void)
{
    cudaFuncAttributes fa;
    cudaError_t e = cudaFuncGetAttributes(&fa, f32_to_bf16_kernel);
    /* the encoder's instances (fp32 out, K and V shared or not) */
#if defined(FOLIO_WGMMA)
    if (use_wgmma()) {
        if (e == cudaSuccess) e = cudaFuncGetAttributes(&fa, sparse_fwd_kernel<false, true, 1, true>);
        if (e == cudaSuccess) e = cudaFuncGetAttributes(&fa, sparse_fwd_kernel<false, false, 1, true>);
        if (e == cudaSuccess) e = cudaFuncGetAttributes(&fa, sparse_redo_kernel<false, true, 1, true>);
        if (e == cudaSuccess) e = cudaFuncGetAttributes(&fa, sparse_redo_kernel<false, false, 1, true>);
        return e;
    }
#endif
    constexpr int MF = FOLIO_ATTN_MF;
    if (e == cudaSuccess) e = cudaFuncGetAttributes(&fa, sparse_fwd_kernel<false, true, MF, false>);
    if (e == cudaSuccess) e = cudaFuncGetAttributes(&fa, sparse_fwd_kernel<false, false, MF, false>);
    if (e == cudaSuccess) e = cudaFuncGetAttributes(&fa, sparse_redo_kernel<false, true, MF, false>);
    if (e == cudaSuccess) e = cudaFuncGetAttributes(&fa, sparse_redo_kernel<false, false, MF, false>);
    return e;
}

extern "C" const char *folio_cuda_attn_kernel_name(void)
{
    return use_wgmma() ? "wgmma" : "mma.sync";
}

extern "C" folio_status_t folio_attn_sparse_fwd_cuda(const folio_attn_cuda_args_t *a)
{
    FOLIO_CHECK_GENERIC(a != NULL, FOLIO_ERR_ARG, "attn cuda: NULL arguments");
    FOLIO_CHECK_GENERIC(a->d_h == kD, FOLIO_ERR_UNSUPPORTED,
                        "attn cuda: head width %d not supported by the tensor-core kernel (only %d)",
                        a->d_h, kD);
    FOLIO_CHECK_GENERIC(a->B == kTile, FOLIO_ERR_UNSUPPORTED,
                        "attn cuda: block size %d not supported (only %d)", a->B, kTile);
    FOLIO_CHECK_GENERIC(a->H >= 1 && a->H <= 65535, FOLIO_ERR_ARG, "attn cuda: heads %d out of range", a->H);
    FOLIO_CHECK_GENERIC(a->W >= 0, FOLIO_ERR_ARG, "attn cuda: window %d < 0", a->W);
    /* A window beyond the document attends the same keys as one of its
     * length; the kernel's tile arithmetic is 32-bit (window spans < 2^31). */
    const int64_t w_eff = a->W < a->n_doc ? a->W : a->n_doc;
    FOLIO_CHECK_GENERIC(w_eff < ((int64_t)1 << 29), FOLIO_ERR_UNSUPPORTED,
                        "attn cuda: window %lld over a %lld-token document is beyond the kernel's 2^29",
                        (long long)a->W, (long long)a->n_doc);
    FOLIO_CHECK_GENERIC(a->scale > 0.f && isfinite(a->scale), FOLIO_ERR_ARG,
                        "attn cuda: scale %g must be finite and > 0", (double)a->scale);
    FOLIO_CHECK_GENERIC(a->q0 >= 0 && a->q0 <= a->q1 && a->q1 <= a->n_doc && a->q0 % kTile == 0,
                        FOLIO_ERR_ARG, "attn cuda: bad query range [%lld, %lld) of %lld tokens",
                        (long long)a->q0, (long long)a->q1, (long long)a->n_doc);
    if (a->q1 == a->q0) return FOLIO_OK;
    const int64_t need_lo = a->q0 - a->W > 0 ? a->q0 - a->W : 0;
    const int64_t need_hi = a->q1 + a->W < a->n_doc ? a->q1 + a->W : a->n_doc;
    FOLIO_CHECK_GENERIC(a->x0 <= need_lo && a->x0 + a->nx >= need_hi, FOLIO_ERR_ARG,
                        "attn cuda: X covers [%lld, %lld) but the window needs [%lld, %lld)",
                        (long long)a->x0, (long long)(a->x0 + a->nx), (long long)need_lo,
                        (long long)need_hi);
    FOLIO_CHECK_GENERIC(a->ld >= (int64_t)a->H * kD && a->ld % 8 == 0, FOLIO_ERR_ARG,
                        "attn cuda: row stride %lld must be >= H*d_h and a multiple of 8",
                        (long long)a->ld);
    FOLIO_CHECK_GENERIC(a->s_max >= 0, FOLIO_ERR_ARG, "attn cuda: s_max < 0");
    if (a->s_max > 0) {
        FOLIO_CHECK_GENERIC(a->sel && a->sel_n && a->node_k && a->node_v, FOLIO_ERR_ARG,
                            "attn cuda: s_max > 0 but sel/sel_n/nodes missing");
        FOLIO_CHECK_GENERIC(a->ld_nodes >= (int64_t)a->H * kD && a->ld_nodes % 8 == 0, FOLIO_ERR_ARG,
                            "attn cuda: node row stride %lld bad", (long long)a->ld_nodes);
    }
    FOLIO_CHECK_GENERIC(a->q && a->k && a->v && a->out, FOLIO_ERR_ARG, "attn cuda: NULL q/k/v/out");
    FOLIO_CHECK_GENERIC(a->ld_out >= (int64_t)a->H * kD && a->ld_out % 2 == 0, FOLIO_ERR_ARG,
                        "attn cuda: output stride %lld bad", (long long)a->ld_out);

    Params p;
    p.q = (const __nv_bfloat16 *)a->q;
    p.k = (const __nv_bfloat16 *)a->k;
    p.v = (const __nv_bfloat16 *)a->v;
    p.ld = a->ld;
    p.x0 = a->x0;
    p.nx = a->nx;
    p.q0 = a->q0;
    p.q1 = a->q1;
    p.n_doc = a->n_doc;
    p.node_k = (const __nv_bfloat16 *)a->node_k;
    p.node_v = (const __nv_bfloat16 *)a->node_v;
    p.ld_nodes = a->ld_nodes;
    p.n_nodes = a->n_nodes;
    p.sel = a->sel;
    p.sel_n = a->sel_n;
    p.s_max = a->s_max;
    p.out = a->out;
    p.ld_out = a->ld_out;
    p.node_mass = a->node_mass;
    p.H = a->H;
    p.W = (int)w_eff;
    p.scale_log2 = a->scale * 1.4426950408889634f;
    /* r = 0 is safe when no score can pass R^2 (every P and sum within
     * 2^-90 .. 2^120, see "softmax"); otherwise, with q = k, the row's own
     * score: without it the first layer's rows (norm sqrt(d) x IDF weight)
     * overflowed P in most blocks, and the redo kernel took twice FAST's time
     * over a GPU ingest (bench/GPU_NOTES.md, fourteenth session) */
    const float rn = a->row_norm_max;
    const bool bounded = rn > 0.f && isfinite(rn) && rn * rn * p.scale_log2 <= 90.f;
    p.ref_self = !bounded && a->q == a->k;
    p.n_redone = a->n_redone;

    const int64_t nqb = (a->q1 - a->q0 + kTile - 1) / kTile;
    FOLIO_CHECK_GENERIC(nqb <= 0x7fffffff, FOLIO_ERR_TOO_LARGE, "attn cuda: too many query blocks");
    dim3 grid((unsigned)nqb, (unsigned)a->H);
    cudaStream_t st = (cudaStream_t)a->stream;
    /* Q = K = V (folio's weightless encoder): one smem tile serves as K
     * (ldmatrix) and V (ldmatrix.trans), halving the L2->SM traffic. */
    bool kv_same = a->k == a->v && (a->s_max == 0 || a->node_k == a->node_v);
#ifdef FOLIO_ATTN_NO_KV_SHARE
    kv_same = false; /* bench baseline */
#endif
    void (*kern)(const Params) = nullptr;
    void (*redo)(const Params, int) = nullptr; /* the blocks FAST could not trust (see "softmax") */
    int threads = 0;
    /* wgmma exists in sm_90a code only: a build for several architectures
     * (e.g. "80;90a") must not pick that kernel on another GPU */
    const bool wg = use_wgmma();
    if (wg) {
#if defined(FOLIO_WGMMA)
        /* the warpgroup MMA, one tile at a time: 5 CTAs per SM overlap one
         * CTA's softmax with another's products; a pipelined variant (the next
         * tile's S issued before this tile's softmax, 3-4 CTAs per SM by its
         * registers) measured slower on an H200 and was removed (0009543 has
         * it; bench/GPU_NOTES.md). */
        if (a->out_bf16) {
            kern = kv_same ? sparse_fwd_kernel<true, true, 1, true> : sparse_fwd_kernel<true, false, 1, true>;
            redo = kv_same ? sparse_redo_kernel<true, true, 1, true> : sparse_redo_kernel<true, false, 1, true>;
        } else {
            kern = kv_same ? sparse_fwd_kernel<false, true, 1, true> : sparse_fwd_kernel<false, false, 1, true>;
            redo = kv_same ? sparse_redo_kernel<false, true, 1, true> : sparse_redo_kernel<false, false, 1, true>;
        }
        threads = Shape<1>::kThr;
#endif
    } else {
        constexpr int MF = FOLIO_ATTN_MF;
        if (a->out_bf16) {
            kern = kv_same ? sparse_fwd_kernel<true, true, MF, false> : sparse_fwd_kernel<true, false, MF, false>;
            redo = kv_same ? sparse_redo_kernel<true, true, MF, false> : sparse_redo_kernel<true, false, MF, false>;
        } else {
            kern = kv_same ? sparse_fwd_kernel<false, true, MF, false> : sparse_fwd_kernel<false, false, MF, false>;
            redo = kv_same ? sparse_redo_kernel<false, true, MF, false> : sparse_redo_kernel<false, false, MF, false>;
        }
        threads = Shape<MF>::kThr;
    }
    p.tma = 0;
#if defined(FOLIO_WGMMA) && !defined(FOLIO_ATTN_NO_TMA)
    /* TMA coordinates are 32-bit; 16-byte aligned rows (ld % 8 == 0 above) */
    if (wg && a->nx < ((int64_t)1 << 31) && ((uintptr_t)a->q | (uintptr_t)a->k | (uintptr_t)a->v) % 16 == 0) {
        const PFN_cuTensorMapEncodeTiled_v12000 enc = tensor_map_encoder();
        const int64_t cols = (int64_t)a->H * kD;
        p.tma = enc && tensor_map_2d(enc, &p.tm_k, a->k, cols, a->nx, a->ld) &&
                (kv_same || tensor_map_2d(enc, &p.tm_v, a->v, cols, a->nx, a->ld)) &&
                (a->q == a->k ? (p.tm_q = p.tm_k, true) : tensor_map_2d(enc, &p.tm_q, a->q, cols, a->nx, a->ld));
    }
#endif
    FOLIO_CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributePreferredSharedMemoryCarveout, 100));
    kern<<<grid, threads, 0, st>>>(p);
    FOLIO_CUDA_CHECK(cudaGetLastError());
    /* the redo scan: a thread a block and head, at most two CTAs an SM */
    int dev = 0, sms = 0;
    FOLIO_CUDA_CHECK(cudaGetDevice(&dev));
    FOLIO_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    const int64_t scan = (nqb * a->H + threads - 1) / threads;
    /* the forward kernel's shared-memory carveout: a kernel that asks for
     * another one cannot share an SM with the forward CTAs of the other
     * streams' documents until they drain (an ingest runs many short
     * documents on several streams) */
    FOLIO_CUDA_CHECK(cudaFuncSetAttribute(redo, cudaFuncAttributePreferredSharedMemoryCarveout, 100));
    redo<<<(unsigned)std::min<int64_t>(scan, 2 * (int64_t)std::max(sms, 1)), threads, 0, st>>>(p, (int)nqb);
    FOLIO_CUDA_CHECK(cudaGetLastError());
    return FOLIO_OK;
}
