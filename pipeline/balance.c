/* pipeline/balance.c — rank rates and the round's throughput-weighted
 * packing (see pipeline_internal.h). */
#include "pipeline_internal.h"

#include <stdlib.h>

folio_status_t folio_balance_init(folio_balance_t *b, int P)
{
    b->P = P;
    b->rank0_bias = 1.0;
    b->rate = calloc((size_t)(P > 0 ? P : 1), sizeof *b->rate);
    return b->rate ? FOLIO_OK : FOLIO_ERR_NOMEM;
}

void folio_balance_free(folio_balance_t *b)
{
    if (!b) return;
    free(b->rate);
    b->rate = NULL;
    b->P = 0;
}

void folio_balance_observe(folio_balance_t *b, int r, uint64_t tokens, double seconds)
{
    if (r < 0 || r >= b->P || tokens == 0 || !(seconds > 0)) return;
    double x = (double)tokens / seconds;
    b->rate[r] = b->rate[r] > 0 ? (1 - FOLIO_BALANCE_NEW) * b->rate[r] + FOLIO_BALANCE_NEW * x : x;
}

void folio_balance_pack(const folio_balance_t *b, const uint32_t *ntok, int64_t n, int *owner)
{
    int P = b->P;
    double *speed = malloc((size_t)P * sizeof *speed), *load = calloc((size_t)P, sizeof *load);
    if (!speed || !load) {
        /* no memory for the weights: round robin is still a valid packing */
        for (int64_t k = 0; k < n; k++) owner[k] = (int)(k % P);
        free(speed);
        free(load);
        return;
    }
    bool known = true;
    for (int r = 0; r < P; r++)
        if (!(b->rate[r] > 0)) known = false;
    double fastest = 0;
    for (int r = 0; r < P; r++) {
        speed[r] = known ? b->rate[r] : 1.0;
        if (r == 0 && b->rank0_bias > 0) speed[r] *= b->rank0_bias;
        if (speed[r] > fastest) fastest = speed[r];
    }
    for (int r = 0; r < P; r++) {
        double s = speed[r] / fastest;
        speed[r] = s < FOLIO_BALANCE_MIN_SHARE ? FOLIO_BALANCE_MIN_SHARE : s;
    }
    /* load[r]: tokens given to r so far; r finishes document k at
     * (load[r] + ntok[k]) / speed[r].  With equal speeds (1.0) the
     * comparison is exact in integers, as the token-count packing was. */
    for (int64_t k = 0; k < n; k++) {
        int best = 0;
        double tbest = (load[0] + ntok[k]) / speed[0];
        for (int r = 1; r < P; r++) {
            double t = (load[r] + ntok[k]) / speed[r];
            if (t < tbest) { tbest = t; best = r; }
        }
        owner[k] = best;
        load[best] += ntok[k];
    }
    free(speed);
    free(load);
}
