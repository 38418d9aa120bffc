/* attn/pool.c — fixed-point pooled sums (attn.h, folio_pool_fixed): the
 * plain-C references of the CUDA pooling kernels and the CPU worker's path
 * (folio_pool_fixed, folio_pool_finish). */
#include "attn.h"

#include <math.h>
#if defined(__AVX512F__) && defined(__AVX512DQ__)
#include <immintrin.h>
#endif

/* a[j] += llrint(x[j] * 2^32) for one row.  The AVX-512 path converts 8
 * doubles at a time with vcvtpd2qq, which rounds by MXCSR (to nearest, ties
 * to even: llrint's rounding in the default mode) and gives the same
 * out-of-range value as the scalar conversion; float -> double and the
 * product by 2^32 are exact, so the sums are the same bits.  llrint was a
 * library call per element: with three poolings per token (sentence,
 * section, document) it cost about as much as the embedding. */
static inline void pool_add_row(int64_t *a, const float *x, uint32_t d)
{
    uint32_t j = 0;
#if defined(__AVX512F__) && defined(__AVX512DQ__)
    const __m512d one = _mm512_set1_pd(FOLIO_POOL_ONE);
    for (; j + 8 <= d; j += 8) {
        const __m512i q = _mm512_cvtpd_epi64(_mm512_mul_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + j)), one));
        _mm512_storeu_si512((void *)(a + j), _mm512_add_epi64(_mm512_loadu_si512((const void *)(a + j)), q));
    }
#endif
    for (; j < d; j++) a[j] += (int64_t)llrint((double)x[j] * FOLIO_POOL_ONE);
}

void folio_pool_fixed(const float *X, uint64_t t0, uint64_t t1, uint32_t d, const uint32_t *begin,
                      const uint32_t *end, uint64_t m, int64_t *acc)
{
    for (uint64_t r = 0; r < m; r++) {
        const uint64_t b = begin[r] > t0 ? begin[r] : t0, e = end[r] < t1 ? end[r] : t1;
        int64_t *a = acc + r * d;
        for (uint64_t t = b; t < e; t++) pool_add_row(a, X + (t - t0) * d, d);
    }
}

void folio_pool_finish(const int64_t *acc, const uint32_t *begin, const uint32_t *end, uint64_t m, uint32_t d,
                       float *out)
{
    for (uint64_t r = 0; r < m; r++) {
        float *o = out + r * d;
        const uint64_t c = end[r] > begin[r] ? end[r] - begin[r] : 0;
        double ss = 0;
        for (uint32_t j = 0; j < d; j++) {
            const double v = c ? (double)acc[r * d + j] / FOLIO_POOL_ONE / (double)c : 0.0;
            o[j] = (float)v;
            ss = fma((double)o[j], (double)o[j], ss); /* explicit: the CUDA twin does the same */
        }
        if (ss > 0) {
            const float inv = (float)(1.0 / sqrt(ss));
            for (uint32_t j = 0; j < d; j++) o[j] *= inv;
        }
    }
}
