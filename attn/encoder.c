/* attn/encoder.c — the encoder steps (summaries, hierarchy levels, summary
 * key selection, one layer over a query range, residual + normalization),
 * the whole-document convenience run, pooling and salience.
 *
 * Every step computes each output element from inputs in a fixed order that
 * does not depend on how a document is split over ranks (blocks are summed
 * token by token, upper levels child by child, routing scores candidate by
 * candidate), so a split run is bit-identical to a whole-document run. */
#include "attn.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "attn_cpu_simd.h"

/* ------------------------------------------------------------------ summaries */

folio_status_t folio_attn_block_sums(const float *X, uint64_t t0, uint64_t t1, uint64_t n, uint32_t B,
                                     uint32_t d, float *out)
{
    FOLIO_CHECK_GENERIC(X && out && B >= 1 && t0 < t1 && t1 <= n && t0 % B == 0 && (t1 % B == 0 || t1 == n),
                        FOLIO_ERR_ARG, "block_sums: tokens [%llu, %llu) of %llu must be a block-aligned range (B=%u)",
                        (unsigned long long)t0, (unsigned long long)t1, (unsigned long long)n, B);
    uint64_t nbk = (t1 - t0 + B - 1) / B;
    int failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        double *acc = malloc(sizeof(double) * d);
        if (!acc) failed = 1;
#pragma omp for schedule(static)
        for (int64_t b = 0; b < (int64_t)nbk; b++) {
            if (!acc) continue;
            uint64_t a = t0 + (uint64_t)b * B, e = a + B < t1 ? a + B : t1;
            for (uint32_t c = 0; c < d; c++) acc[c] = 0;
            for (uint64_t i = a; i < e; i++) {
                const float *x = X + (i - t0) * d;
                for (uint32_t c = 0; c < d; c++) acc[c] += x[c];
            }
            double inv = 1.0 / (double)(e - a);
            for (uint32_t c = 0; c < d; c++) out[(size_t)b * d + c] = (float)(acc[c] * inv);
        }
        free(acc);
    }
    FOLIO_CHECK_GENERIC(!failed, FOLIO_ERR_NOMEM, "block_sums: out of memory");
    return FOLIO_OK;
}

folio_status_t folio_hier_build_upper(const folio_hier_t *h, uint32_t d, float *nodes)
{
    double *acc = malloc(sizeof(double) * d);
    FOLIO_CHECK_ALLOC(acc);
    for (uint32_t l = 2; l <= h->n_levels; l++) {
        for (uint32_t idx = 0; idx < h->count[l]; idx++) {
            uint32_t c0 = idx * h->G, c1 = c0 + h->G < h->count[l - 1] ? c0 + h->G : h->count[l - 1];
            for (uint32_t c = 0; c < d; c++) acc[c] = 0;
            uint64_t tot = 0;
            for (uint32_t ch = c0; ch < c1; ch++) {
                uint64_t a, e;
                folio_hier_node_tokens(h, l - 1, ch, &a, &e);
                const float *x = nodes + (size_t)(h->offset[l - 1] + ch) * d;
                double w = (double)(e - a);
                for (uint32_t c = 0; c < d; c++) acc[c] += w * x[c];
                tot += e - a;
            }
            float *o = nodes + (size_t)(h->offset[l] + idx) * d;
            for (uint32_t c = 0; c < d; c++) o[c] = tot ? (float)(acc[c] / (double)tot) : 0.0f;
        }
    }
    free(acc);
    return FOLIO_OK;
}

/* ------------------------------------------------------------------ selection
 *
 * Routing = for every query block and head, the k best candidate blocks by
 * the fp32 score s = q . k accumulated c = 0 .. dh-1 in one chain (one fused
 * multiply-add per step where the target has FMA: the same chain as the CUDA
 * route_topk_kernel's fmaf), ties to the lower index, own group excluded.
 *
 * Exact path (portable): every score in fp32, register-blocked, candidates
 * streamed in tiles of 64 with a running top-k.  nb^2 * d FMAs per layer.
 *
 * Pre-filter path (AVX512-VNNI builds): every score first as an int8
 * estimate (vpdpbusd: 4x the fp32 multiply rate), with a rigorous bound
 * beta_q on |fp32 score - estimate| per query block; a candidate is re-scored
 * exactly only when its estimate is within 2 beta_q of the k-th best
 * estimate (two passes over the candidates, see route_int8).  Every block
 * that can be in the exact top-k is re-scored, by the same fp32 chain, and
 * offered to the same running top-k in increasing index order, so the result
 * is the exact path's, bit for bit (tests/unit/test_attn_route.c).  The
 * exact path remains for heads or query blocks the bound does not cover
 * (non-finite or huge values).
 *
 * The bound, per head, with real arithmetic: keys k_j = sk a_j + ek_j
 * (a_j int8, one scale sk per head), query q = sq b + eq (b int8, its own
 * scale sq), I_j = b . a_j (exact in int32):
 *   |q.k_j - sq sk I_j| = |eq.k_j + sq b.ek_j| <= |eq| |k_j| + sq |b| |ek_j|
 *   |s_j - q.k_j| <= gamma_dh |q| |k_j|       (fp32 chain, gamma = dh u/(1-dh u))
 * with |k_j| and |ek_j| bounded by their maximum over the head's blocks.
 * If k blocks have estimates >= E, the k-th exact score is >= sq sk E - beta,
 * so a block with sq sk I_j + beta below that can never be selected. */

#if defined(__AVX512F__) || defined(__FMA__)
#include <immintrin.h>
#endif
#if defined(__AVX512F__) && defined(__AVX512VNNI__) && defined(__FMA__)
#define ROUTE_INT8 1
#else
#define ROUTE_INT8 0
#endif

#define RQ 4  /* query blocks scored together against each candidate tile */
#define QC 64 /* query blocks per task: candidates are streamed once per chunk */
_Static_assert(QC % 16 == 0 && QC % RQ == 0 && QC <= 256, "chunk: whole vectors, uint8_t indices");

/* One step of the score chain, acc + q k rounded once wherever the target
 * has FMA (spelled out, not left to the compiler's contraction, so that the
 * pre-filter's re-scoring with fmaf is the same arithmetic; CUDA's
 * route_topk_kernel uses fmaf too). */
static inline v16f route_fma(v16f q, v16f k, v16f acc)
{
#if defined(__AVX512F__)
    return (v16f)_mm512_fmadd_ps((__m512)q, (__m512)k, (__m512)acc);
#elif defined(__FMA__)
    __m256 q2[2], k2[2], a2[2];
    memcpy(q2, &q, sizeof q);
    memcpy(k2, &k, sizeof k);
    memcpy(a2, &acc, sizeof acc);
    for (int i = 0; i < 2; i++) a2[i] = _mm256_fmadd_ps(q2[i], k2[i], a2[i]);
    memcpy(&acc, a2, sizeof acc);
    return acc;
#else
    return q * k + acc;
#endif
}

/* Offers candidate j with exact score sv to a running top-k (tv, ti: k
 * slots, descending).  Candidates must come in increasing index order: a
 * later equal score never displaces an earlier one. */
static inline void topk_offer(float *tv, int32_t *ti, int *nt, float *thr, int k, float sv, int32_t j)
{
    if (!(sv > *thr)) return;
    int pos = *nt < k ? *nt : k - 1;
    while (pos > 0 && sv > tv[pos - 1]) {
        tv[pos] = tv[pos - 1];
        ti[pos] = ti[pos - 1];
        pos--;
    }
    tv[pos] = sv;
    ti[pos] = j;
    if (*nt < k) (*nt)++;
    if (*nt == k) *thr = tv[k - 1];
}

/* Exact path for query blocks [c0, c1) of head hh: K = kt of the head
 * (dh, nbp), candidates contiguous.  Fills tv/ti/nt (QC, k+1). */
static void route_exact(const float *node_q, uint32_t d, uint32_t hh, uint32_t dh, const float *K, uint32_t nbp,
                        uint32_t nb, uint32_t G, uint32_t c0, uint32_t c1, int k, float *tv, int32_t *ti, int *nt,
                        float *thr)
{
    for (uint32_t i = 0; i < c1 - c0; i++) {
        nt[i] = 0;
        thr[i] = -INFINITY;
    }
    for (uint32_t b0 = 0; b0 < nb; b0 += 64) {
        for (uint32_t g0 = c0; g0 < c1; g0 += RQ) {
            const uint32_t g1 = g0 + RQ < c1 ? g0 + RQ : c1;
            const float *q[RQ];
            for (uint32_t r = 0; r < RQ; r++) q[r] = node_q + (size_t)(g0 + r < g1 ? g0 + r : g1 - 1) * d + hh * dh;
            v16f acc[RQ][4];
            for (int r = 0; r < RQ; r++)
                for (int u = 0; u < 4; u++) acc[r][u] = (v16f){0};
            for (uint32_t c = 0; c < dh; c++) {
                v16f kv[4];
                for (int u = 0; u < 4; u++) {
                    kv[u] = v16_load(K + (size_t)c * nbp + b0 + 16 * u);
                    V16_IN_REG(kv[u]);
                }
                for (int r = 0; r < RQ; r++) {
                    v16f qq = v16_bcast(q[r][c]);
                    for (int u = 0; u < 4; u++) acc[r][u] = route_fma(qq, kv[u], acc[r][u]);
                }
            }
            for (uint32_t qb = g0; qb < g1; qb++) {
                const uint32_t r = qb - g0, i = qb - c0;
                const uint32_t gs = qb / G * G, ge = gs + G < nb ? gs + G : nb;
                float row[64] __attribute__((aligned(64)));
                for (int u = 0; u < 4; u++) v16_store(row + 16 * u, acc[r][u]);
                /* own group (already hierarchical keys) and padding are out */
                for (uint32_t b = b0; b < b0 + 64; b++)
                    if (b >= nb || (b >= gs && b < ge)) row[b - b0] = -INFINITY;
                float *tvi = tv + (size_t)i * (k + 1);
                int32_t *tii = ti + (size_t)i * (k + 1);
                for (int u = 0; u < 4; u++) {
                    /* NaN lanes (never selected) read as -inf: v16_hmax
                     * would let one hide the other 15 lanes */
                    v16f v = v16_load(row + 16 * u);
                    if (!(v16_hmax(v16_sel(v == v, v, v16_bcast(-INFINITY))) > thr[i])) continue;
                    for (int j = 16 * u; j < 16 * u + 16; j++)
                        topk_offer(tvi, tii, &nt[i], &thr[i], k, row[j], (int32_t)(b0 + j));
                }
            }
        }
    }
}

#if ROUTE_INT8
/* Per head: keys quantized for vpdpbusd (unsigned bytes a + 128, a in
 * [-127, 127]), laid out (tile of 64 blocks, dim quad, block, 4 dims) so one
 * 64-byte load holds 4 dims of 16 blocks; padding blocks and dims are a = 0.
 * kf: the fp32 keys themselves (node_k, rows of ld floats), for the
 * re-scoring: a head's slice of a row is as contiguous as in a copy. */
typedef struct {
    uint8_t *kp;   /* (H, ntile, nq4, 64, 4) */
    const float *kf; /* node_k: (nb, ld), head hh at column hh * dh */
    uint32_t ld;
    float *rs;     /* (H, nb, 4) per key: |k|^2, |a|^2, |k - sk a|^2, sum_c a_c (symmetric path) */
    double *sk;    /* (H) key scale */
    double *k2;    /* (H) max_j |k_j| (2-norm of the head's slice) */
    double *ek2;   /* (H) max_j |k_j - sk a_j| */
    bool *ok;      /* (H) keys finite, not all zero, |k| <= 1e15: else exact path */
    uint32_t ntile, nq4;
} route_keys_t;

/* Values beyond this fall back to the exact path: products and sums of 64k
 * of them stay far from fp32 overflow, so the fp32 error bound holds. */
#define ROUTE_MAX_ABS 1e15

/* Quantizes one row x (n floats) with scale s (inv = 1/s): a_c = round(x_c
 * inv) clamped to [-127, 127], stored as bytes a_c + off (off = 128 for the
 * keys, 0 for queries) at out[(c/4)*stride + c%4].  Returns the sums
 * |x|^2, |a|^2 and |x - s a|^2 (fp32, in any order: callers bound them with
 * slack) and the sum of the a_c (exact: small integers). */
static void route_quant_row(const float *x, uint32_t n, float s, float inv, int off, uint8_t *out, size_t stride,
                            float sums[4])
{
    __m512 x2 = _mm512_setzero_ps(), a2 = x2, e2 = x2, a1 = x2;
    const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    for (uint32_t c = 0; c < n; c += 16) {
        const __mmask16 live = n - c >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - c)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(live, x + c);
        __m512 a = _mm512_roundscale_ps(_mm512_mul_ps(v, _mm512_set1_ps(inv)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        a = _mm512_min_ps(_mm512_max_ps(a, lo), hi);
        const __m512 e = _mm512_fnmadd_ps(_mm512_set1_ps(s), a, v);
        x2 = _mm512_fmadd_ps(v, v, x2);
        a2 = _mm512_fmadd_ps(a, a, a2);
        e2 = _mm512_fmadd_ps(e, e, e2);
        a1 = _mm512_add_ps(a, a1);
        uint32_t w[4];
        _mm_storeu_si128((__m128i *)w, _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(a), _mm512_set1_epi32(off))));
        /* dims past n load as 0: their bytes are a = 0 */
        for (uint32_t q4 = 0; q4 < 4 && c + 4 * q4 < n; q4++) memcpy(out + (size_t)(c / 4 + q4) * stride, &w[q4], 4);
    }
    sums[0] = _mm512_reduce_add_ps(x2);
    sums[1] = _mm512_reduce_add_ps(a2);
    sums[2] = _mm512_reduce_add_ps(e2);
    sums[3] = _mm512_reduce_add_ps(a1);
}

/* Largest |x_c| of one row, and whether every value is finite and within
 * ROUTE_MAX_ABS (else the row is not covered by the bound). */
static bool route_row_max(const float *x, uint32_t n, float *mx)
{
    __m512 m = _mm512_setzero_ps();
    __mmask16 bad = 0;
    for (uint32_t c = 0; c < n; c += 16) {
        const __mmask16 live = n - c >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - c)) - 1);
        const __m512 v = _mm512_abs_ps(_mm512_maskz_loadu_ps(live, x + c));
        bad |= _mm512_mask_cmp_ps_mask(live, v, _mm512_set1_ps((float)ROUTE_MAX_ABS), _CMP_NLE_UQ); /* also NaN */
        m = _mm512_max_ps(m, v);
    }
    *mx = _mm512_reduce_max_ps(m);
    return !bad;
}

static void route_keys_build(route_keys_t *rk, const float *node_k, uint32_t nb, uint32_t H, uint32_t dh,
                             int nth)
{
    const uint32_t d = H * dh, ntile = rk->ntile, nq4 = rk->nq4;
#pragma omp parallel for schedule(static) num_threads(nth)
    for (int64_t hh = 0; hh < (int64_t)H; hh++) {
        float mx = 0;
        bool fin = true;
        const float *kf = node_k + (size_t)hh * dh;
        for (uint32_t b = 0; b < nb; b++) {
            float m;
            fin &= route_row_max(kf + (size_t)b * d, dh, &m);
            mx = m > mx ? m : mx;
        }
        rk->ok[hh] = fin && mx > 0 && (uint64_t)nb * dh < ((uint64_t)1 << 31); /* gather indices are int32 */
        const float sk = rk->ok[hh] ? mx / 127.0f : 1.0f;
        rk->sk[hh] = sk;
        double k2 = 0, ek2 = 0;
        uint8_t *kh = rk->kp + (size_t)hh * ntile * nq4 * 256;
        memset(kh, 128, (size_t)ntile * nq4 * 256); /* padding blocks and dims: a = 0 */
        for (uint32_t b = 0; rk->ok[hh] && b < nb; b++) {
            float *sums = rk->rs + ((size_t)hh * nb + b) * 4;
            route_quant_row(kf + (size_t)b * d, dh, sk, 1.0f / sk, 128,
                            kh + ((size_t)(b / 64) * nq4 * 64 + b % 64) * 4, 256, sums);
            if (sums[0] > k2) k2 = sums[0];
            if (sums[2] > ek2) ek2 = sums[2];
        }
        rk->k2[hh] = sqrt(k2);
        rk->ek2[hh] = sqrt(ek2);
    }
}

/* Scratch of one thread for the pre-filter path; per-query arrays have RQ
 * spare entries so that groups of RQ can be loaded whole. */
typedef struct {
    int32_t *qw;       /* (QC, nq4) query bytes, four per word */
    int64_t *margin;   /* (QC) 2 beta / (sq sk) rounded up, in estimate units */
    double *qscale;    /* (QC) sq sk: estimate units to score units, 0 = not covered by the bound */
    __m512i *kv;       /* (k) sorted vectors of the k-th tile maximum selection */
    int32_t *kth;      /* (QC + 16) k-th largest tile maximum, or INT32_MIN */
    int32_t *cut;      /* (QC + 16) pass 2: estimates below it cannot be selected */
    uint32_t *gs, *ge; /* (QC) own group of each query block */
    int32_t *tmax;     /* (ntile, QC) largest estimate of each tile */
    int32_t *pend;     /* (QC, 16) survivors waiting to be re-scored */
    int *npend;        /* (QC) */
    int32_t *off;      /* (QC + 16) symmetric path: 128 x the sum of a query's bytes (pass 1: negated) */
} route_scratch_t;

static void route_scratch_free(route_scratch_t *S)
{
    free(S->qw); free(S->margin); free(S->qscale); free(S->kv); free(S->kth); free(S->cut);
    free(S->gs); free(S->ge); free(S->tmax); free(S->pend); free(S->npend); free(S->off);
    memset(S, 0, sizeof *S);
}

static bool route_scratch_init(route_scratch_t *S, uint32_t nq4, uint32_t ntile, int k)
{
    memset(S, 0, sizeof *S);
    S->qw = malloc(sizeof(int32_t) * QC * nq4);
    S->margin = malloc(sizeof(int64_t) * QC);
    S->qscale = malloc(sizeof(double) * QC);
    S->kv = aligned_alloc(64, sizeof(__m512i) * k);
    S->kth = malloc(sizeof(int32_t) * (QC + 16));
    S->cut = malloc(sizeof(int32_t) * (QC + 16));
    S->gs = malloc(sizeof(uint32_t) * QC);
    S->ge = malloc(sizeof(uint32_t) * QC);
    S->tmax = malloc(sizeof(int32_t) * (size_t)ntile * QC);
    S->pend = malloc(sizeof(int32_t) * QC * 16);
    S->npend = malloc(sizeof(int) * QC);
    S->off = malloc(sizeof(int32_t) * (QC + 16));
    if (S->qw && S->margin && S->qscale && S->kv && S->kth && S->cut && S->gs && S->ge && S->tmax && S->pend && S->npend && S->off)
        return true;
    route_scratch_free(S);
    return false;
}

/* Estimates of 4 query blocks (qw rows q0..q3, nq4 words) against the 64
 * blocks of one tile, plus init[r]: out[r][u] = lanes 16u .. 16u+15.  Sixteen named
 * accumulators (in an array GCC copies them around every step), and not
 * inlined: inside route_int8 GCC runs out of registers and reloads keys. */
__attribute__((noinline)) static void route_tile4(const uint8_t *kt, const int32_t *q0, const int32_t *q1,
                                                  const int32_t *q2, const int32_t *q3, uint32_t nq4,
                                                  const int32_t init[RQ], __m512i out[RQ][4])
{
    /* the accumulators start at init[r] (the symmetric path's -off_r) */
    __m512i a00 = _mm512_set1_epi32(init[0]), a01 = a00, a02 = a00, a03 = a00, a10 = _mm512_set1_epi32(init[1]),
            a11 = a10, a12 = a10, a13 = a10, a20 = _mm512_set1_epi32(init[2]), a21 = a20, a22 = a20, a23 = a20,
            a30 = _mm512_set1_epi32(init[3]), a31 = a30, a32 = a30, a33 = a30;
    for (uint32_t c4 = 0; c4 < nq4; c4++) {
        const uint8_t *kc = kt + (size_t)c4 * 256;
        const __m512i k0 = _mm512_load_si512((const void *)kc), k1 = _mm512_load_si512((const void *)(kc + 64)),
                      k2 = _mm512_load_si512((const void *)(kc + 128)),
                      k3 = _mm512_load_si512((const void *)(kc + 192));
/* one query block's word against the four key vectors */
#define ROUTE_DP4(a0, a1, a2, a3, w)                                                                                   \
    do {                                                                                                               \
        const __m512i qq = _mm512_set1_epi32(w);                                                                       \
        a0 = _mm512_dpbusd_epi32(a0, k0, qq);                                                                          \
        a1 = _mm512_dpbusd_epi32(a1, k1, qq);                                                                          \
        a2 = _mm512_dpbusd_epi32(a2, k2, qq);                                                                          \
        a3 = _mm512_dpbusd_epi32(a3, k3, qq);                                                                          \
    } while (0)
        ROUTE_DP4(a00, a01, a02, a03, q0[c4]);
        ROUTE_DP4(a10, a11, a12, a13, q1[c4]);
        ROUTE_DP4(a20, a21, a22, a23, q2[c4]);
        ROUTE_DP4(a30, a31, a32, a33, q3[c4]);
#undef ROUTE_DP4
    }
    out[0][0] = a00; out[0][1] = a01; out[0][2] = a02; out[0][3] = a03;
    out[1][0] = a10; out[1][1] = a11; out[1][2] = a12; out[1][3] = a13;
    out[2][0] = a20; out[2][1] = a21; out[2][2] = a22; out[2][3] = a23;
    out[3][0] = a30; out[3][1] = a31; out[3][2] = a32; out[3][3] = a33;
}

static const int32_t ZERO4[RQ] = {0};

/* Lanes of tile [b0, b0+64) that are candidates of a query block whose own
 * group is [gs, ge): real blocks outside the group. */
static inline uint64_t route_lanes(uint32_t b0, uint32_t nb, uint32_t gs, uint32_t ge)
{
    uint64_t m = nb - b0 >= 64 ? ~0ull : (1ull << (nb - b0)) - 1;
    if (ge > b0 && gs < b0 + 64) {
        const uint32_t lo = gs > b0 ? gs - b0 : 0, hi = ge < b0 + 64 ? ge - b0 : 64;
        m &= ~((hi - lo >= 64 ? ~0ull : (1ull << (hi - lo)) - 1) << lo);
    }
    return m;
}

static inline uint64_t route_mask_gt(const __m512i a[4], int32_t x)
{
    const __m512i xv = _mm512_set1_epi32(x);
    return (uint64_t)_mm512_cmpgt_epi32_mask(a[0], xv) | (uint64_t)_mm512_cmpgt_epi32_mask(a[1], xv) << 16 |
           (uint64_t)_mm512_cmpgt_epi32_mask(a[2], xv) << 32 | (uint64_t)_mm512_cmpgt_epi32_mask(a[3], xv) << 48;
}

/* The largest lane of each of the 4 query blocks' 64 lanes: a reduction
 * network over the four at once (a quarter of four separate reductions). */
static inline __m128i route_max4(const __m512i a[RQ][4])
{
    __m512i v[RQ];
    for (int r = 0; r < RQ; r++)
        v[r] = _mm512_max_epi32(_mm512_max_epi32(a[r][0], a[r][1]), _mm512_max_epi32(a[r][2], a[r][3]));
    /* 128-bit quarters: x01 = (v0, v0, v1, v1) partial maxima, x23 likewise */
    const __m512i x01 = _mm512_max_epi32(_mm512_shuffle_i32x4(v[0], v[1], 0x44), _mm512_shuffle_i32x4(v[0], v[1], 0xEE));
    const __m512i x23 = _mm512_max_epi32(_mm512_shuffle_i32x4(v[2], v[3], 0x44), _mm512_shuffle_i32x4(v[2], v[3], 0xEE));
    /* quarter r: four partial maxima of query block r */
    __m512i y = _mm512_max_epi32(_mm512_shuffle_i32x4(x01, x23, 0x88), _mm512_shuffle_i32x4(x01, x23, 0xDD));
    y = _mm512_max_epi32(y, _mm512_shuffle_epi32(y, (_MM_PERM_ENUM)0x4E));
    y = _mm512_max_epi32(y, _mm512_shuffle_epi32(y, (_MM_PERM_ENUM)0xB1));
    return _mm512_castsi512_si128(_mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0,
                                                                             0, 0, 0, 0), y));
}

/* Exact fp32 scores of m <= 16 candidate rows (kf rows of ld floats, dh wide) against
 * q: the fused chain of route_exact (fmadd_ss: one rounding, as fmaf),
 * eight independent chains at a time.  Scalar on purpose: Zen 4's gathers
 * cost ~40 cycles each, and a lane-per-candidate vector needs dh of them. */
static void route_rescore(const float *q, const float *kf, uint32_t ld, uint32_t dh, const int32_t *idx, int m,
                          float *out)
{
    for (int t = 0; t < m; t += 8) {
        const float *kr[8];
        __m128 s[8];
        for (int r = 0; r < 8; r++) {
            kr[r] = kf + (size_t)idx[t + r < m ? t + r : t] * ld;
            s[r] = _mm_setzero_ps();
        }
        for (uint32_t c = 0; c < dh; c++) {
            const __m128 qc = _mm_load_ss(q + c);
            for (int r = 0; r < 8; r++) s[r] = _mm_fmadd_ss(qc, _mm_load_ss(kr[r] + c), s[r]);
        }
        for (int r = 0; r < 8 && t + r < m; r++) out[t + r] = _mm_cvtss_f32(s[r]);
    }
}

/* Once query block i has k exact scores, a later candidate (higher index)
 * must score above the k-th, thr, to enter; its score is at most
 * qscale (M - off) + beta with beta <= (margin - 1) qscale / 2, so an
 * estimate M below thr / qscale - margin / 2 - 1 + off cannot: the cut
 * rises to that as thr does (in the same integer units as the estimates;
 * the 1 covers the rounding of the division). */
static inline void route_raise_cut(route_scratch_t *S, uint32_t i, int nt, int k, float thr)
{
    if (nt < k || !(S->qscale[i] > 0)) return;
    const double x = floor((double)thr / S->qscale[i] - 0.5 * (double)S->margin[i]) - 1.0 + (double)S->off[i];
    if (x > (double)S->cut[i]) S->cut[i] = x >= (double)INT32_MAX ? INT32_MAX : (int32_t)x;
}

/* Re-scores query block i's pending survivors and offers them, in order. */
static inline void route_flush(const float *q, const float *kf, uint32_t ld, uint32_t dh, int32_t *pend, int *np, int k, float *tv,
                               int32_t *ti, int *nt, float *thr)
{
    float sc[16];
    route_rescore(q, kf, ld, dh, pend, *np, sc);
    for (int e = 0; e < *np; e++) topk_offer(tv, ti, nt, thr, k, sc[e], pend[e]);
    *np = 0;
}

/* Query words and margins of query blocks [c0, c1) of head hh, quantized
 * with their own scale.  sym (the symmetric path, Q = K): a query's bytes
 * are its key bytes (the keys' scale), read from the key tiles with the
 * sums route_keys_build kept, so node_q is not read again. */
static void route_int8_queries(const route_keys_t *rk, route_scratch_t *S, const float *node_q, uint32_t d,
                               uint32_t hh, uint32_t dh, uint32_t nb, uint32_t G, uint32_t c0, uint32_t c1, bool sym)
{
    const uint32_t nq4 = rk->nq4, nq = c1 - c0;
    const double sk = rk->sk[hh], K2 = rk->k2[hh], EK2 = rk->ek2[hh];
    const double u = 0x1p-24, gamma = dh * u / (1.0 - dh * u);
    const uint32_t *kh = (const uint32_t *)(rk->kp + (size_t)hh * rk->ntile * nq4 * 256);
    for (uint32_t i = 0; i < nq; i++) {
        const float *q = node_q + (size_t)(c0 + i) * d + hh * dh;
        uint8_t *qb = (uint8_t *)(S->qw + (size_t)i * nq4);
        float mx, sq = 0;
        const float *sums = NULL;
        float own[4];
        if (sym) {
            const uint32_t b = c0 + i;
            for (uint32_t c4 = 0; c4 < nq4; c4++)
                S->qw[(size_t)i * nq4 + c4] = (int32_t)(kh[((size_t)(b / 64) * nq4 + c4) * 64 + b % 64] ^ 0x80808080u);
            sums = rk->rs + ((size_t)hh * nb + b) * 4;
            sq = (float)sk;
            S->off[i] = 128 * (int32_t)sums[3];
        } else {
            memset(qb, 0, sizeof(int32_t) * nq4); /* padding dims: b = 0 */
            if (route_row_max(q, dh, &mx) && mx > 0 && rk->ok[hh]) {
                sq = mx / 127.0f;
                route_quant_row(q, dh, sq, 1.0f / sq, 0, qb, 4, own);
                sums = own;
            }
        }
        /* a query the bound does not cover looks at every candidate */
        int64_t margin = (int64_t)1 << 40;
        S->qscale[i] = 0;
        if (sums) {
            const double q2 = sqrt(sums[0]), b2 = sqrt(sums[1]), e2 = sqrt(sums[2]);
            double beta = e2 * K2 + sq * b2 * EK2 + gamma * q2 * K2;
            /* slack for the fp32 sums and residuals above (relative dh u
             * at most) and the double arithmetic here */
            beta = beta * (1.0 + 1e-3 + 4.0 * dh * u) + 1e-6 * q2 * K2 + 1e-30;
            const double m = ceil(2.0 * beta / ((double)sq * sk)) + 1.0;
            if (m < (double)((int64_t)1 << 40)) {
                margin = (int64_t)m;
                S->qscale[i] = (double)sq * sk;
                if (!sym) S->off[i] = 128 * (int32_t)sums[3]; /* the key bytes' +128 */
            }
        }
        S->margin[i] = margin;
        S->gs[i] = (c0 + i) / G * G;
        S->ge[i] = S->gs[i] + G < nb ? S->gs[i] + G : nb;
    }
}

/* Pass 1 of the pre-filter for query blocks [c0, c1): every tile's largest
 * estimate per query block into S->tmax (ntile, QC). */
static void route_int8_pass1(const route_keys_t *rk, route_scratch_t *S, uint32_t hh, uint32_t nb, uint32_t nq)
{
    const uint32_t nq4 = rk->nq4, ntile = rk->ntile;
    const uint8_t *kh = rk->kp + (size_t)hh * ntile * nq4 * 256;
    const __m512i none = _mm512_set1_epi32(INT32_MIN);
    for (uint32_t t = 0; t < ntile; t++) {
        const uint32_t b0 = t * 64;
        const uint8_t *kt = kh + (size_t)t * nq4 * 256;
        for (uint32_t g0 = 0; g0 < nq; g0 += RQ) {
            const uint32_t g1 = g0 + RQ < nq ? g0 + RQ : nq;
            const int32_t *qw[RQ];
            for (uint32_t r = 0; r < RQ; r++) qw[r] = S->qw + (size_t)(g0 + r < g1 ? g0 + r : g1 - 1) * nq4;
            __m512i acc[RQ][4];
            route_tile4(kt, qw[0], qw[1], qw[2], qw[3], nq4, ZERO4, acc);
            for (uint32_t i = g0; i < g1; i++) /* padding or own group in the tile: those lanes out */
                if (b0 + 64 > nb || (S->ge[i] > b0 && S->gs[i] < b0 + 64)) {
                    const uint64_t lanes = route_lanes(b0, nb, S->gs[i], S->ge[i]);
                    for (int u4 = 0; u4 < 4; u4++)
                        acc[i - g0][u4] = _mm512_mask_mov_epi32(none, (__mmask16)(lanes >> (16 * u4)), acc[i - g0][u4]);
                }
            /* all four: entries past nq are never read (QC % RQ == 0) */
            _mm_storeu_si128((__m128i *)(S->tmax + (size_t)t * QC + g0), route_max4(acc));
        }
    }
}

/* Symmetric pass 1 (Q = K, every block a query; QC == 64 so a chunk of
 * query blocks is a tile of candidates): with the queries quantized by the
 * keys' scale, the estimate E_ij = a_i . a_j is symmetric, so each pair of
 * tiles (A, B >= A) is multiplied once: row maxima give A's query blocks
 * their maximum over tile B, column maxima B's query blocks theirs over
 * tile A.  vpdpbusd yields M_ij = E_ij + off_i (keys stored a + 128, off_i =
 * 128 sum_c a_ic): the accumulators start at -off_i, so they hold E.  The own-group
 * relation is symmetric too, so one mask serves both.  Writes tmaxE
 * (ntile, nbp) of head hh, in E units: rows of tile B for A's query blocks,
 * rows of tile A for B's.  Distinct row tiles A write distinct entries. */
static void route_sym_pass1(const route_keys_t *rk, route_scratch_t *S, uint32_t hh, uint32_t nb, uint32_t G,
                            uint32_t A, int32_t *tmaxE)
{
    const uint32_t nq4 = rk->nq4, ntile = rk->ntile, nbp = ntile * 64, a0 = A * 64;
    const uint8_t *kh = rk->kp + (size_t)hh * ntile * nq4 * 256;
    const __m512i none = _mm512_set1_epi32(INT32_MIN);
    /* the 64 rows of tile A as query words (key bytes - 128: signed a) and
     * their offsets; rows past nb are padding (a = 0), masked out below */
    const uint32_t *ka = (const uint32_t *)(kh + (size_t)A * nq4 * 256);
    for (uint32_t r = 0; r < 64; r++) {
        int32_t sum = 0;
        for (uint32_t c4 = 0; c4 < nq4; c4++) {
            const uint32_t w = ka[(size_t)c4 * 64 + r] ^ 0x80808080u;
            S->qw[(size_t)r * nq4 + c4] = (int32_t)w;
            sum += (int8_t)(w & 0xff) + (int8_t)(w >> 8 & 0xff) + (int8_t)(w >> 16 & 0xff) + (int8_t)(w >> 24);
        }
        S->off[r] = -128 * sum; /* the accumulators' start: M - off = E */
        const uint32_t b = a0 + r;
        S->gs[r] = b < nb ? b / G * G : 0;
        S->ge[r] = b < nb ? (S->gs[r] + G < nb ? S->gs[r] + G : nb) : 0;
    }
    for (uint32_t B = A; B < ntile; B++) {
        const uint32_t b0 = B * 64;
        const uint8_t *kt = kh + (size_t)B * nq4 * 256;
        __m512i col[4] = {none, none, none, none};
        for (uint32_t g0 = 0; g0 < 64; g0 += RQ) {
            __m512i acc[RQ][4];
            route_tile4(kt, S->qw + (size_t)g0 * nq4, S->qw + (size_t)(g0 + 1) * nq4, S->qw + (size_t)(g0 + 2) * nq4,
                        S->qw + (size_t)(g0 + 3) * nq4, nq4, S->off + g0, acc);
            for (uint32_t r = 0; r < RQ; r++) {
                const uint32_t i = g0 + r, b = a0 + i;
                if (b >= nb || b0 + 64 > nb || (S->ge[i] > b0 && S->gs[i] < b0 + 64)) {
                    const uint64_t lanes = b >= nb ? 0 : route_lanes(b0, nb, S->gs[i], S->ge[i]);
                    for (int u4 = 0; u4 < 4; u4++)
                        acc[r][u4] = _mm512_mask_mov_epi32(none, (__mmask16)(lanes >> (16 * u4)), acc[r][u4]);
                }
            }
            _mm_storeu_si128((__m128i *)(tmaxE + (size_t)B * nbp + a0 + g0), route_max4(acc));
            if (B != A)
                for (int u4 = 0; u4 < 4; u4++)
                    col[u4] = _mm512_max_epi32(col[u4], _mm512_max_epi32(_mm512_max_epi32(acc[0][u4], acc[1][u4]),
                                                                         _mm512_max_epi32(acc[2][u4], acc[3][u4])));
        }
        if (B != A)
            for (int u4 = 0; u4 < 4; u4++) _mm512_storeu_si512((void *)(tmaxE + (size_t)A * nbp + b0 + 16 * u4), col[u4]);
    }
}

/* Query blocks [c0, c1) of head hh by the pre-filter; same outputs as
 * route_exact.  Pass 1 (route_int8_pass1, or the symmetric tiles in tmaxE)
 * keeps every tile's largest estimate (tmax) per query block; the k-th
 * largest tmax, less the margin, is the cut.  Pass 2 streams the tiles
 * again but looks only at the (query block, tile) pairs whose tmax reaches
 * the cut: their lanes at or above it survive, are re-scored exactly and
 * offered in increasing index order.  tmaxE: NULL, or the symmetric pass's
 * (ntile, nbp) maxima of head hh (then c0 % 64 == 0). */
static void route_int8(const route_keys_t *rk, route_scratch_t *S, const float *node_q, uint32_t d, uint32_t hh,
                       uint32_t dh, uint32_t nb, uint32_t G, uint32_t c0, uint32_t c1, int k, float *tv, int32_t *ti,
                       int *nt, float *thr, const int32_t *tmaxE)
{
    const uint32_t nq4 = rk->nq4, nq = c1 - c0, ntile = rk->ntile;
    route_int8_queries(rk, S, node_q, d, hh, dh, nb, G, c0, c1, tmaxE != NULL);
    const uint8_t *kh = rk->kp + (size_t)hh * ntile * nq4 * 256;
    if (!tmaxE) {
        route_int8_pass1(rk, S, hh, nb, nq);
    } else {
        /* in the units of this pass's estimates (M = E + off) */
        for (uint32_t t = 0; t < ntile; t++)
            for (uint32_t i = 0; i < nq; i += 16) {
                const __m512i e = _mm512_loadu_si512((const void *)(tmaxE + (size_t)t * ntile * 64 + c0 + i));
                const __mmask16 real = _mm512_cmpneq_epi32_mask(e, _mm512_set1_epi32(INT32_MIN));
                _mm512_storeu_si512((void *)(S->tmax + (size_t)t * QC + i),
                                    _mm512_mask_add_epi32(e, real, e, _mm512_loadu_si512((const void *)(S->off + i))));
            }
    }
    /* k-th largest tile maximum of each query block (16 at a time, lanes =
     * query blocks): tmax values pass through k sorted vectors, each keeping
     * the larger and handing the smaller on.  The k largest tiles hold k
     * distinct blocks with estimates >= it, so it bounds the k-th estimate
     * from below (INT32_MIN while fewer than k tiles have candidates). */
    for (uint32_t i0 = 0; i0 < nq; i0 += 16) {
        for (int e = 0; e < k; e++) S->kv[e] = _mm512_set1_epi32(INT32_MIN);
        for (uint32_t t = 0; t < ntile; t++) {
            __m512i v = _mm512_loadu_si512((const void *)(S->tmax + (size_t)t * QC + i0));
            for (int e = 0; e < k; e++) {
                const __m512i hi = _mm512_max_epi32(S->kv[e], v);
                v = _mm512_min_epi32(S->kv[e], v);
                S->kv[e] = hi;
            }
        }
        _mm512_storeu_si512((void *)(S->kth + i0), S->kv[k - 1]);
    }
    /* pass 2: a query block's survivors are re-scored 8 at a time as they
     * come (tile by tile: in increasing index order), the cut rising with
     * the k-th exact score (route_raise_cut); their key rows, scattered
     * over the head's keys, are prefetched when found */
    const float *kf = rk->kf + (size_t)hh * dh;
    const uint32_t ld = rk->ld;
    for (uint32_t i = 0; i < nq; i++) {
        /* kth stays INT32_MIN (no estimate is) until k candidates were seen */
        const int64_t c = S->kth[i] > INT32_MIN ? (int64_t)S->kth[i] - S->margin[i] : INT32_MIN;
        S->cut[i] = c < INT32_MIN ? INT32_MIN : (int32_t)c;
        S->npend[i] = 0;
        nt[i] = 0;
        thr[i] = -INFINITY;
    }
    for (uint32_t t = 0; t < ntile; t++) {
        const uint32_t b0 = t * 64;
        uint8_t qi[QC + RQ];
        uint32_t ns = 0;
        for (uint32_t i0 = 0; i0 < nq; i0 += 16) {
            const __mmask16 live = nq - i0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (nq - i0)) - 1);
            __mmask16 m = _mm512_mask_cmpge_epi32_mask(live, _mm512_loadu_si512((const void *)(S->tmax + (size_t)t * QC + i0)),
                                                       _mm512_loadu_si512((const void *)(S->cut + i0)));
            for (; m; m &= m - 1) qi[ns++] = (uint8_t)(i0 + __builtin_ctz(m));
        }
        for (uint32_t s0 = 0; s0 < ns; s0 += RQ) {
            const uint32_t s1 = s0 + RQ < ns ? s0 + RQ : ns;
            const int32_t *qw[RQ];
            for (uint32_t r = 0; r < RQ; r++) qw[r] = S->qw + (size_t)qi[s0 + r < s1 ? s0 + r : s1 - 1] * nq4;
            __m512i acc[RQ][4];
            route_tile4(kh + (size_t)t * nq4 * 256, qw[0], qw[1], qw[2], qw[3], nq4, ZERO4, acc);
            for (uint32_t s = s0; s < s1; s++) {
                const uint32_t i = qi[s];
                uint64_t lanes = route_lanes(b0, nb, S->gs[i], S->ge[i]);
                if (S->cut[i] > INT32_MIN) lanes &= route_mask_gt(acc[s - s0], S->cut[i] - 1);
                int32_t *pend = S->pend + (size_t)i * 16;
                while (lanes) {
                    const int32_t j = (int32_t)(b0 + __builtin_ctzll(lanes));
                    lanes &= lanes - 1;
                    for (uint32_t c = 0; c < dh; c += 16) _mm_prefetch((const char *)(kf + (size_t)j * ld + c), _MM_HINT_T0);
                    pend[S->npend[i]++] = j;
                    if (S->npend[i] == 8) {
                        route_flush(node_q + (size_t)(c0 + i) * d + hh * dh, kf, ld, dh, pend, &S->npend[i], k,
                                    tv + (size_t)i * (k + 1), ti + (size_t)i * (k + 1), &nt[i], &thr[i]);
                        route_raise_cut(S, i, nt[i], k, thr[i]); /* the tile's other lanes too */
                        if (S->cut[i] > INT32_MIN) lanes &= route_mask_gt(acc[s - s0], S->cut[i] - 1);
                    }
                }
            }
        }
    }
    for (uint32_t i = 0; i < nq; i++)
        if (S->npend[i])
            route_flush(node_q + (size_t)(c0 + i) * d + hh * dh, kf, ld, dh, S->pend + (size_t)i * 16, &S->npend[i], k,
                        tv + (size_t)i * (k + 1), ti + (size_t)i * (k + 1), &nt[i], &thr[i]);
}
#endif /* ROUTE_INT8 */

folio_status_t folio_attn_select(const folio_pattern_t *p, const folio_hier_t *h, const float *node_q,
                                 const float *node_k, uint32_t qb0, uint32_t qb1, int32_t *sel, int32_t *sel_n,
                                 int s_max, int threads)
{
    const uint32_t H = p->heads, dh = p->head_dim, d = H * dh, nb = h->count[1];
    FOLIO_CHECK_GENERIC(qb0 <= qb1 && qb1 <= nb, FOLIO_ERR_ARG, "select: query blocks [%u, %u) outside [0, %u)",
                        qb0, qb1, nb);
    uint32_t need = folio_pattern_summary_max(p, h->n);
    FOLIO_CHECK_GENERIC((uint32_t)s_max >= need, FOLIO_ERR_ARG, "select: s_max=%d < %u summary keys of the pattern",
                        s_max, need);
    FOLIO_CHECK_GENERIC(p->block == h->B && p->group == h->G, FOLIO_ERR_ARG,
                        "select: pattern (block=%u, group=%u) does not match the hierarchy (B=%u, G=%u)", p->block,
                        p->group, h->B, h->G);
    const bool hier = p->kind == FOLIO_PATTERN_HIER || p->kind == FOLIO_PATTERN_HIER_TOPK;
    const bool routed = p->kind == FOLIO_PATTERN_HIER_TOPK && h->n_levels >= 2 && p->topk > 0;
    const uint32_t k = p->topk < nb ? p->topk : nb;
    const int nth = threads > 0 ? threads : omp_get_max_threads();
    const uint32_t nbp = (nb + 63) / 64 * 64;

    /* which heads take the pre-filter; the others (or all, without VNNI)
     * the exact path on kt (H, dh, nbp): candidates contiguous */
    bool any_exact = routed;
#if ROUTE_INT8
    route_keys_t rk = {0};
    if (routed) {
        rk.ntile = nbp / 64;
        rk.nq4 = (dh + 3) / 4;
        rk.kp = aligned_alloc(64, (size_t)H * rk.ntile * rk.nq4 * 256);
        rk.kf = node_k;
        rk.ld = d;
        rk.rs = malloc(sizeof(float) * (size_t)H * nb * 4);
        rk.sk = malloc(sizeof(double) * H * 3);
        rk.ok = malloc(sizeof(bool) * H);
        if (!rk.kp || !rk.rs || !rk.sk || !rk.ok) {
            free(rk.kp); free(rk.rs); free(rk.sk); free(rk.ok);
            FOLIO_CHECK_ALLOC(NULL);
        }
        rk.k2 = rk.sk + H;
        rk.ek2 = rk.sk + 2 * H;
        route_keys_build(&rk, node_k, nb, H, dh, nth);
        any_exact = false;
        for (uint32_t hh = 0; hh < H; hh++) any_exact |= !rk.ok[hh];
    }
#endif
    float *kt = NULL;
    if (any_exact) {
        kt = aligned_alloc(64, sizeof(float) * (size_t)H * dh * nbp);
        if (!kt) {
#if ROUTE_INT8
            free(rk.kp); free(rk.rs); free(rk.sk); free(rk.ok);
#endif
            FOLIO_CHECK_ALLOC(NULL);
        }
#pragma omp parallel for schedule(static) num_threads(nth)
        for (int64_t hc = 0; hc < (int64_t)H * dh; hc++) {
            float *row = kt + (size_t)hc * nbp;
            for (uint32_t b = 0; b < nb; b++) row[b] = node_k[(size_t)b * d + hc];
            for (uint32_t b = nb; b < nbp; b++) row[b] = 0.0f;
        }
    }
    /* Task = (chunk of QC query blocks, head): every query block of the chunk
     * keeps a running top-k while the candidates stream past in tiles of 64.
     * Heads one after the other (a thread stays on one head's keys); with
     * the symmetric pre-filter (Q = K: the same node array, and every block
     * a query, so chunks are tiles) a head's pass 1 runs first, over row
     * tiles A with pairs (A, B >= A), into tmaxE (ntile, nbp). */
    const uint32_t nq = qb1 - qb0, nch = (nq + QC - 1) / QC;
    int32_t *tmaxE = NULL;
#if ROUTE_INT8
    _Static_assert(QC == 64, "the symmetric pre-filter takes a chunk of query blocks for a tile of candidates");
    /* tmaxE is (nb / 64) x nb: O(n^2 / B^2) memory, so only up to 64 MiB
     * (nb <= 32768 blocks, 2M tokens at B = 64); beyond, the general path
     * (O(n) memory) */
    if (routed && node_q == node_k && qb0 == 0 && qb1 == nb &&
        (uint64_t)rk.ntile * nbp * sizeof(int32_t) <= ((uint64_t)64 << 20)) {
        tmaxE = malloc(sizeof(int32_t) * (size_t)rk.ntile * nbp);
        if (!tmaxE) {
            free(kt); free(rk.kp); free(rk.rs); free(rk.sk); free(rk.ok);
            FOLIO_CHECK_ALLOC(NULL);
        }
    }
#endif
    int failed = 0;
#pragma omp parallel num_threads(nth) reduction(| : failed)
    {
        float *tv = routed ? malloc(sizeof(float) * QC * (k + 1)) : NULL;
        int32_t *ti = routed ? malloc(sizeof(int32_t) * QC * (k + 1)) : NULL;
        int *nt = routed ? malloc(sizeof(int) * QC) : NULL;
        float *thr = routed ? malloc(sizeof(float) * QC) : NULL;
        if (routed && (!tv || !ti || !nt || !thr)) failed = 1;
#if ROUTE_INT8
        route_scratch_t S = {0};
        if (routed && !route_scratch_init(&S, rk.nq4, rk.ntile, (int)k)) failed = 1;
#endif
        for (uint32_t hh = 0; hh < H; hh++) {
#if ROUTE_INT8
            const int32_t *te = tmaxE && rk.ok[hh] ? tmaxE : NULL;
            if (te) {
#pragma omp for schedule(dynamic, 1)
                for (int64_t A = 0; A < (int64_t)rk.ntile; A++) /* longest rows first */
                    if (!failed) route_sym_pass1(&rk, &S, hh, nb, h->G, (uint32_t)A, tmaxE);
            }
#endif
#pragma omp for schedule(dynamic, 1)
            for (int64_t t = 0; t < (int64_t)nch; t++) {
                if (failed) continue;
                const uint32_t c0 = qb0 + (uint32_t)t * QC, c1 = c0 + QC < qb1 ? c0 + QC : qb1;
                if (routed) {
#if ROUTE_INT8
                    if (rk.ok[hh])
                        route_int8(&rk, &S, node_q, d, hh, dh, nb, h->G, c0, c1, (int)k, tv, ti, nt, thr, te);
                    else
#endif
                        route_exact(node_q, d, hh, dh, kt + (size_t)hh * dh * nbp, nbp, nb, h->G, c0, c1, (int)k, tv,
                                    ti, nt, thr);
                }
                for (uint32_t qb = c0; qb < c1; qb++) {
                    int32_t *out = sel + ((size_t)(qb - qb0) * H + hh) * s_max;
                    int ns = 0;
                    if (p->kind == FOLIO_PATTERN_LONGT5) {
                        for (uint32_t b = 0; b < nb; b++) out[ns++] = (int32_t)b;
                    } else if (hier) {
                        for (uint32_t l = 1; l <= h->n_levels; l++) {
                            uint32_t a = folio_hier_ancestor(h, qb, l), s0, s1;
                            folio_hier_siblings(h, l, a, &s0, &s1);
                            for (uint32_t s = s0; s < s1; s++)
                                if (s != a) out[ns++] = (int32_t)(h->offset[l] + s);
                        }
                    }
                    if (routed) {
                        const uint32_t i = qb - c0;
                        for (int j = 0; j < nt[i]; j++) out[ns++] = ti[(size_t)i * (k + 1) + j];
                    }
                    sel_n[(size_t)(qb - qb0) * H + hh] = ns;
                }
            } /* the barrier here: the next head's pass 1 overwrites tmaxE */
        }
        free(tv);
        free(ti);
        free(nt);
        free(thr);
#if ROUTE_INT8
        route_scratch_free(&S);
#endif
    }
    free(tmaxE);
    free(kt);
#if ROUTE_INT8
    free(rk.kp); free(rk.rs); free(rk.sk); free(rk.ok);
#endif
    FOLIO_CHECK_GENERIC(!failed, FOLIO_ERR_NOMEM, "select: out of memory");
    return FOLIO_OK;
}

void folio_mass_accumulate(const int32_t *sel, const int32_t *sel_n, const float *node_mass, uint32_t n_qblocks,
                           int H, int s_max, int64_t *mass)
{
    for (uint64_t i = 0; i < (uint64_t)n_qblocks * H; i++)
        for (int s = 0; s < sel_n[i]; s++)
            mass[sel[i * s_max + s]] += llrint((double)node_mass[i * s_max + s] * (double)FOLIO_MASS_ONE);
}

/* ------------------------------------------------------------------ layer */

void folio_rmsnorm_heads(float *X, uint64_t n, uint32_t H, uint32_t d_h)
{
    const double target = sqrt((double)d_h);
    const int64_t rows = (int64_t)n * H; /* head slices, contiguous */
#pragma omp parallel for schedule(static)
    for (int64_t r0 = 0; r0 < rows; r0 += 8) {
        float *x[8];
        const int m = rows - r0 < 8 ? (int)(rows - r0) : 8;
        for (int i = 0; i < 8; i++) x[i] = X + (size_t)(r0 + (i < m ? i : 0)) * d_h;
        attn_rms_rows8(x, m, d_h, target);
    }
}

/* y (rows, d) = x (rows, d) W (d, d) */
static float *project(const float *x, uint64_t rows, uint32_t d, const float *W)
{
    float *y = malloc(sizeof(float) * rows * d + 1);
    if (!y) return NULL;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < (int64_t)rows; i++) {
        float *yr = y + (size_t)i * d;
        for (uint32_t c = 0; c < d; c++) yr[c] = 0;
        for (uint32_t e = 0; e < d; e++) {
            float xe = x[(size_t)i * d + e];
            const float *wr = W + (size_t)e * d;
            for (uint32_t c = 0; c < d; c++) yr[c] += xe * wr[c];
        }
    }
    return y;
}

folio_status_t folio_encoder_layer(const folio_pattern_t *p, const folio_hier_t *h, const folio_layer_weights_t *w,
                                   const float *X, uint64_t x0, uint64_t nx, uint64_t q0, uint64_t q1,
                                   const float *nodes, const int32_t *sel, const int32_t *sel_n, int s_max,
                                   float *Xout, int64_t *mass, int threads)
{
    const uint32_t H = p->heads, dh = p->head_dim, d = H * dh;
    FOLIO_CHECK_GENERIC(q0 >= x0 && q1 <= x0 + nx && q0 < q1, FOLIO_ERR_ARG,
                        "encoder_layer: queries [%llu, %llu) not inside X [%llu, %llu)", (unsigned long long)q0,
                        (unsigned long long)q1, (unsigned long long)x0, (unsigned long long)(x0 + nx));
    FOLIO_CHECK_GENERIC(q1 % p->block == 0 || q1 == h->n, FOLIO_ERR_ARG,
                        "encoder_layer: query range must end at a block boundary or the document end");
    const uint64_t nq = q1 - q0;
    folio_status_t st = FOLIO_OK;
    float *Q = NULL, *K = NULL, *V = NULL, *NK = NULL, *NV = NULL, *O = NULL, *O2 = NULL, *bias = NULL;
    const float *q = X, *k = X, *v = X, *nk = nodes, *nv = nodes;
    if (w && w->wq) { if (!(Q = project(X, nx, d, w->wq))) goto oom; q = Q; }
    if (w && w->wk) {
        if (!(K = project(X, nx, d, w->wk)) || !(NK = project(nodes, h->n_nodes, d, w->wk))) goto oom;
        k = K; nk = NK;
    }
    if (w && w->wv) {
        if (!(V = project(X, nx, d, w->wv)) || !(NV = project(nodes, h->n_nodes, d, w->wv))) goto oom;
        v = V; nv = NV;
    }
    if (w && w->wo) {
        if (!(O = malloc(sizeof(float) * nq * d + 1))) goto oom;
    }

    if (p->sumbias && s_max > 0) {
        if (!(bias = malloc(sizeof(float) * h->n_nodes))) goto oom;
        folio_hier_log_sizes(h, bias);
    }
    folio_attn_args_t a = {
        .q = q, .k = k, .v = v, .ld = d, .x0 = (int64_t)x0, .nx = (int64_t)nx,
        .q0 = (int64_t)q0, .q1 = (int64_t)q1, .n_doc = (int64_t)h->n,
        .node_k = nk, .node_v = nv, .ld_nodes = d, .n_nodes = h->n_nodes,
        .sel = sel, .sel_n = sel_n, .s_max = s_max, .out = O ? O : Xout, .ld_out = d,
        .H = (int)H, .d_h = (int)dh, .B = (int)p->block,
        .W = (int)(p->kind == FOLIO_PATTERN_DENSE ? (h->n < (1u << 30) ? h->n : (1u << 30)) : p->window),
        .scale = folio_pattern_scale(p), .threads = threads, .node_bias = bias, .mass = s_max > 0 ? mass : NULL,
    };
    if (!O) { /* residual + normalization in the kernel's epilogue: no passes over (nq, d) */
        a.residual = X + (q0 - x0) * d;
        a.ld_res = d;
        a.rmsnorm = true;
    }
    st = folio_attn_sparse_fwd_cpu(&a);
    if (st != FOLIO_OK) goto done;
    if (O) {
        if (!(O2 = project(O, nq, d, w->wo))) goto oom;
        memcpy(Xout, O2, sizeof(float) * nq * d);
        /* Xout holds the attention output: add the residual */
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < (int64_t)nq; i++) {
            const float *xr = X + (q0 - x0 + (uint64_t)i) * d;
            float *o = Xout + (uint64_t)i * d;
            for (uint32_t c = 0; c < d; c++) o[c] = xr[c] + o[c];
        }
        folio_rmsnorm_heads(Xout, nq, H, dh);
    }
    goto done;
oom:
    folio_log_at(__FILE__, __LINE__, "encoder_layer: out of memory (%llu tokens)", (unsigned long long)nx);
    st = FOLIO_ERR_NOMEM;
done:
    free(Q); free(K); free(V); free(NK); free(NV); free(O); free(O2); free(bias);
    return st;
}

/* ------------------------------------------------------------------ whole doc */

void folio_encoded_clear(folio_encoded_t *e)
{
    if (!e) return;
    free(e->X);
    free(e->nodes);
    free(e->mass);
    memset(e, 0, sizeof *e);
}

folio_status_t folio_encoder_run(const folio_pattern_t *p, const folio_layer_weights_t *w, const float *X0,
                                 uint64_t n, int threads, folio_encoded_t *out)
{
    memset(out, 0, sizeof *out);
    FOLIO_CHECK_GENERIC(X0 && n >= 1, FOLIO_ERR_ARG, "encoder: empty document");
    folio_pattern_t r;
    FOLIO_TRY(folio_pattern_resolve(p, n, &r));
    folio_hier_t h;
    FOLIO_TRY(folio_hier_init(&h, n, r.block, r.group));
    const uint32_t H = r.heads, d = folio_pattern_dim(&r), nb = h.count[1];
    const int s_max = (int)folio_pattern_summary_max(&r, n);
    folio_status_t st = FOLIO_OK;
    float *X = malloc(sizeof(float) * n * d), *X2 = malloc(sizeof(float) * n * d);
    float *nodes = malloc(sizeof(float) * (size_t)h.n_nodes * d);
    int64_t *mass = calloc(h.n_nodes, sizeof(int64_t));
    int32_t *sel = malloc(sizeof(int32_t) * (size_t)nb * H * (s_max > 0 ? s_max : 1));
    int32_t *sel_n = malloc(sizeof(int32_t) * (size_t)nb * H);
    float *NQ = NULL, *NK = NULL;
    if (!X || !X2 || !nodes || !mass || !sel || !sel_n) {
        st = FOLIO_ERR_NOMEM;
        folio_log_at(__FILE__, __LINE__, "encoder: out of memory for a document of %llu tokens",
                     (unsigned long long)n);
        goto fail;
    }
    memcpy(X, X0, sizeof(float) * n * d);
    for (uint32_t l = 0; l < r.layers; l++) {
        const folio_layer_weights_t *lw = w ? &w[l] : NULL;
        if ((st = folio_attn_block_sums(X, 0, n, n, r.block, d, nodes)) != FOLIO_OK) goto fail;
        if ((st = folio_hier_build_upper(&h, d, nodes)) != FOLIO_OK) goto fail;
        const float *nq = nodes, *nk = nodes;
        if (lw && lw->wq) { if (!(NQ = project(nodes, nb, d, lw->wq))) { st = FOLIO_ERR_NOMEM; goto fail; } nq = NQ; }
        if (lw && lw->wk) { if (!(NK = project(nodes, h.n_nodes, d, lw->wk))) { st = FOLIO_ERR_NOMEM; goto fail; } nk = NK; }
        if (s_max > 0 && (st = folio_attn_select(&r, &h, nq, nk, 0, nb, sel, sel_n, s_max, threads)) != FOLIO_OK)
            goto fail;
        free(NQ); free(NK);
        NQ = NK = NULL;
        if ((st = folio_encoder_layer(&r, &h, lw, X, 0, n, 0, n, nodes, s_max > 0 ? sel : NULL,
                                      s_max > 0 ? sel_n : NULL, s_max, X2, mass, threads)) != FOLIO_OK)
            goto fail;
        float *t = X; X = X2; X2 = t;
    }
    if ((st = folio_attn_block_sums(X, 0, n, n, r.block, d, nodes)) != FOLIO_OK) goto fail;
    if ((st = folio_hier_build_upper(&h, d, nodes)) != FOLIO_OK) goto fail;
    free(X2); free(sel); free(sel_n);
    out->pattern = r;
    out->hier = h;
    out->n = n;
    out->d = d;
    out->X = X;
    out->nodes = nodes;
    out->mass = mass;
    return FOLIO_OK;
fail:
    free(X); free(X2); free(nodes); free(mass); free(sel); free(sel_n); free(NQ); free(NK);
    return st;
}

/* ------------------------------------------------------------------ outputs */

folio_status_t folio_pool_ranges(const float *X, uint64_t n, uint32_t d, const uint32_t *begin,
                                 const uint32_t *end, uint32_t m, float *out)
{
    double *acc = malloc(sizeof(double) * d);
    FOLIO_CHECK_ALLOC(acc);
    folio_status_t st = FOLIO_OK;
    for (uint32_t r = 0; r < m; r++) {
        float *o = out + (size_t)r * d;
        if (begin[r] > end[r] || end[r] > n) {
            folio_log_at(__FILE__, __LINE__, "pool: range %u [%u, %u) is outside the %llu tokens", r, begin[r],
                         end[r], (unsigned long long)n);
            st = FOLIO_ERR_ARG;
            break;
        }
        for (uint32_t c = 0; c < d; c++) acc[c] = 0;
        for (uint32_t i = begin[r]; i < end[r]; i++)
            for (uint32_t c = 0; c < d; c++) acc[c] += X[(size_t)i * d + c];
        double nn = 0;
        for (uint32_t c = 0; c < d; c++) nn += acc[c] * acc[c];
        double f = nn > 0 ? 1.0 / sqrt(nn) : 0.0;
        for (uint32_t c = 0; c < d; c++) o[c] = (float)(acc[c] * f);
    }
    free(acc);
    return st;
}

folio_status_t folio_salience_ranges(const folio_hier_t *h, const int64_t *mass, const uint32_t *begin,
                                     const uint32_t *end, uint32_t m, float *out)
{
    const uint64_t n = h->n;
    /* per-level density: mass of the node / tokens under it */
    double total = 0;
    for (uint32_t f = 0; f < h->n_nodes; f++) total += (double)mass[f];
    double *dens = malloc(sizeof(double) * (h->n_nodes ? h->n_nodes : 1));
    FOLIO_CHECK_ALLOC(dens);
    for (uint32_t l = 1; l <= h->n_levels; l++)
        for (uint32_t i = 0; i < h->count[l]; i++) {
            uint64_t a, e;
            folio_hier_node_tokens(h, l, i, &a, &e);
            dens[h->offset[l] + i] = e > a ? (double)mass[h->offset[l] + i] / (double)(e - a) : 0.0;
        }
    const double doc_mean = total / (double)n;
    folio_status_t st = FOLIO_OK;
    uint32_t m_ok = m; /* ranges before the first bad one are still computed */
    for (uint32_t r = 0; r < m; r++)
        if (begin[r] > end[r] || end[r] > n) {
            folio_log_at(__FILE__, __LINE__, "salience: range %u [%u, %u) is outside the %llu tokens", r,
                         begin[r], end[r], (unsigned long long)n);
            st = FOLIO_ERR_ARG;
            m_ok = r;
            break;
        }
    /* Ranges are independent and each is summed token by token in the same
     * order as ever, so any thread count gives the same bits; the level
     * densities of a token's ancestors are looked up once per block (every
     * token of a block has the same ancestors).  On a long document this ran
     * on the single writer, one token at a time (~0.08 s at 8.7M tokens). */
    const uint32_t L = h->n_levels;
#pragma omp parallel for schedule(dynamic, 256) if (m_ok > 1024)
    for (uint32_t r = 0; r < m_ok; r++) {
        double s = 0, dl[FOLIO_HIER_MAX_LEVELS + 1];
        uint32_t cur = UINT32_MAX;
        for (uint32_t i = begin[r]; i < end[r]; i++) {
            const uint32_t b = i / h->B;
            if (b != cur) {
                cur = b;
                for (uint32_t l = 1; l <= L; l++) dl[l] = dens[h->offset[l] + folio_hier_ancestor(h, b, l)];
            }
            for (uint32_t l = 1; l <= L; l++) s += dl[l];
        }
        out[r] = (end[r] > begin[r] && doc_mean > 0) ? (float)(s / (end[r] - begin[r]) / doc_mean) : 0.0f;
    }
    free(dens);
    return st;
}
