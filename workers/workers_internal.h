/* workers/workers_internal.h — exchange primitives used by the encoder loop
 * (implemented over MPI in exchange.c; the NCCL path provides the same). */
#ifndef FOLIO_WORKERS_INTERNAL_H
#define FOLIO_WORKERS_INTERNAL_H

#include "workers.h"

/* Halo: send `first` (rows_l rows) to the left neighbour and `last` (rows_r
 * rows) to the right one; receive the left halo into `left` (rows_l rows)
 * and the right halo into `right` (rows_r rows).  Edge ranks skip the side
 * that has no neighbour. */
folio_status_t fx_halo(folio_exchange_t *x, const float *first, const float *last, float *left,
                       float *right, size_t rows_l, size_t rows_r, size_t row_floats);
/* Every rank gets all rows: rank r contributes rows [row0[r], row0[r+1]). */
folio_status_t fx_allgather_rows(folio_exchange_t *x, const float *mine, const uint64_t *row0,
                                 size_t row_floats, float *all);
/* In-place exact sum over ranks, result on rank 0. */
folio_status_t fx_reduce_i64(folio_exchange_t *x, int64_t *buf, size_t n);
/* Rank 0's all (n_rows, row_len), zeroed by it, += every rank's rows
 * [lo, lo + cnt) of partial sums. */
folio_status_t fx_gather_rows_i64(folio_exchange_t *x, const int64_t *mine, uint64_t lo, uint64_t cnt,
                                  size_t row_len, int64_t *all);

/* all[r * n + i] = rank r's mine[i]. */
folio_status_t fx_allgather_u64(folio_exchange_t *x, const uint64_t *mine, int n, uint64_t *all);

/* Fixed-point unit of pooled sums: exact, order-independent accumulation
 * (|x| <= sqrt(d_h) after RMS normalization, so 2^32 leaves room for 2^27
 * tokens in one range before an int64 could overflow). */
#define FOLIO_POOL_ONE 4294967296.0

#endif
