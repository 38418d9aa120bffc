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

/* Rank 0 gets all rows: rank r contributes rows [row0[r], row0[r+1]) (the
 * other ranks' `all` is not touched).  A result gather, timed apart. */
folio_status_t fx_gather_rows(folio_exchange_t *x, const float *mine, const uint64_t *row0, size_t row_floats,
                              float *all);
/* Every rank's blob to rank 0, which calls fn(ctx, rank, blob, bytes) for
 * each in rank order (its own first) and stops at the first error; blobs of
 * any size (sent in 1 GB pieces); fn may be NULL on rank 0 (blobs received
 * and dropped).  A result gather, timed apart. */
typedef folio_status_t (*fx_blob_fn)(void *ctx, int rank, const void *blob, size_t bytes);
folio_status_t fx_gather_each(folio_exchange_t *x, const void *blob, size_t bytes, fx_blob_fn fn, void *ctx);

/* Rank 0 gets every rank's rows [lo, hi) of a table of n_rows rows,
 * received straight into all + lo * row_floats (rank 0's own rows are
 * moved there unless mine already points there); spans may leave gaps,
 * which are not touched.  A result gather, timed apart. */
folio_status_t fx_gather_spans(folio_exchange_t *x, const float *mine, uint64_t lo, uint64_t hi, size_t row_floats,
                               uint64_t n_rows, float *all);
/* all[r * n + i] = rank r's mine[i]. */
folio_status_t fx_allgather_u64(folio_exchange_t *x, const uint64_t *mine, int n, uint64_t *all);

/* What one rank computes of a document: the layer loop's geometry. */
typedef struct {
    const folio_pattern_t *p;   /* resolved for the document                 */
    const folio_hier_t *h;
    uint64_t n;                 /* document tokens                           */
    uint32_t d;
    uint64_t t0, t1;            /* this rank's queries                       */
    uint64_t x0, nx;            /* rows held, halos included                 */
    uint64_t hl, hr;            /* halo rows left / right                    */
    uint32_t qb0, qb1;          /* this rank's query blocks                  */
    int s_max;
    int P;                      /* ranks sharing the document                */
    const uint64_t *row0;       /* (P + 1) first block row of each rank      */
} folio_layer_span_t;

/* The CUDA device context of a worker (workers/worker_cuda.c). */
typedef struct folio_gpu folio_gpu_t;
/* Opens device `device` (mod the device count); FOLIO_ERR_NO_DEVICE when the
 * build has no CUDA or no device is present; FOLIO_ERR_UNSUPPORTED when the
 * pattern is not one the CUDA kernels implement. */
folio_status_t folio_gpu_create(int device, const folio_pattern_t *p, bool staging, folio_gpu_t **out);
void folio_gpu_destroy(folio_gpu_t **g);
/* A document's share [t0, t1) on the device: embeds tokens [x0, x0+nx)
 * from doc's text (weights: IDF per document token, or NULL), runs the p
 * layers (halos and block summaries by NCCL when the exchange has a
 * communicator), then writes the final block means and the salience mass
 * (n_nodes, overwritten) into host nodes and mass.  Alone (sp->P == 1):
 * rows [qb0, qb1) and this rank's mass.  Over ranks: rank 0 gets every
 * rank's block rows [0, n_blocks) and the mass summed over the ranks, both
 * gathered device to device by NCCL (one copy to the host, on rank 0 only;
 * the other ranks' host nodes and mass are not written), so the caller
 * makes no MPI result gather of them.  The final X stays on the device for
 * folio_gpu_pool_ranges until the next encode. */
folio_status_t folio_gpu_encode(folio_gpu_t *g, folio_exchange_t *x, const folio_layer_span_t *sp,
                                const folio_doc_t *doc, const float *weights, float *nodes, int64_t *mass);
/* Ranges [0, m) of the resident document: ranges [w0, w1) (complete on
 * this rank) finished on the device into host fin ((w1 - w0), d floats,
 * folio_pool_finish) -- or, fin NULL, kept on the device for
 * folio_gpu_gather_spans -- and the others' fixed-point partial sums into
 * host part (rows [0, w0) then [w1, m), int64, any alignment). */
folio_status_t folio_gpu_pool_ranges(folio_gpu_t *g, const uint32_t *begin, const uint32_t *end, uint64_t m,
                                     uint64_t w0, uint64_t w1, float *fin, void *part);
/* fx_gather_spans for finished rows on the device: every rank's rows
 * [lo, hi) of an n_rows table, kept on the device by the last
 * folio_gpu_pool_ranges (fin NULL) on ranks > 0 and already in place on
 * rank 0, reach rank 0's host out + lo * d through NCCL (device to device,
 * then one copy a rank on rank 0).  Collective over the exchange's ranks;
 * a bad span is reported and gathered as empty. */
folio_status_t folio_gpu_gather_spans(folio_gpu_t *g, folio_exchange_t *x, uint64_t lo, uint64_t hi, uint64_t n_rows,
                                      float *out);
/* NCCL communicator of an exchange (NULL when none) and its CUDA stream. */
void *fx_nccl(const folio_exchange_t *x);
void fx_add_seconds(folio_exchange_t *x, double s);
/* Result gathers made elsewhere (the NCCL ones), timed with the MPI ones. */
void fx_add_gather_seconds(folio_exchange_t *x, double s);

/* FOLIO_POOL_ONE, the fixed-point unit of pooled sums: attn/attn.h. */

#endif
