/* attn/pool.c — fixed-point pooled sums (attn.h, folio_pool_fixed): the
 * plain-C reference of the CUDA pooling kernel and the CPU worker's path. */
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
