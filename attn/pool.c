/* attn/pool.c — fixed-point pooled sums (attn.h, folio_pool_fixed): the
 * plain-C references of the CUDA pooling kernels and the CPU worker's path
 * (folio_pool_fixed, folio_pool_finish). */
#include "attn.h"

#include <math.h>

void folio_pool_fixed(const float *X, uint64_t t0, uint64_t t1, uint32_t d, const uint32_t *begin,
                      const uint32_t *end, uint64_t m, int64_t *acc)
{
    for (uint64_t r = 0; r < m; r++) {
        const uint64_t b = begin[r] > t0 ? begin[r] : t0, e = end[r] < t1 ? end[r] : t1;
        int64_t *a = acc + r * d;
        for (uint64_t t = b; t < e; t++) {
            const float *x = X + (t - t0) * d;
            for (uint32_t j = 0; j < d; j++) a[j] += (int64_t)llrint((double)x[j] * FOLIO_POOL_ONE);
        }
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
