/* workers/exchange.c — the MPI implementation of the document exchange:
 * halo rows with the neighbours (MPI_Sendrecv), all block summaries of the
 * document (MPI_Allgatherv), exact int64 sums and results to rank 0
 * (MPI_Reduce, MPI_Gatherv, point-to-point blobs).  The NCCL path
 * implements the layer exchange for device buffers (worker_cuda.c). */
#include "workers_internal.h"

#include <stdlib.h>
#include <string.h>

struct folio_exchange {
    MPI_Comm comm;
    void *nccl;    /* ncclComm_t for device buffers, or NULL */
    bool local;    /* one rank, no MPI at all: safe from any thread */
    int rank, size;
    double seconds;        /* halos + block summaries                       */
    double gather_seconds; /* results to rank 0                             */
};

folio_status_t folio_exchange_create_local(folio_exchange_t **out)
{
    folio_exchange_t *x = calloc(1, sizeof *x);
    FOLIO_CHECK_ALLOC(x);
    x->local = true;
    x->size = 1;
    *out = x;
    return FOLIO_OK;
}

folio_status_t folio_exchange_create_mpi(MPI_Comm comm, folio_exchange_t **out)
{
    folio_exchange_t *x = calloc(1, sizeof *x);
    FOLIO_CHECK_ALLOC(x);
    x->comm = comm;
    if (MPI_Comm_rank(comm, &x->rank) != MPI_SUCCESS || MPI_Comm_size(comm, &x->size) != MPI_SUCCESS) {
        free(x);
        return FOLIO_ERR_MPI;
    }
    *out = x;
    return FOLIO_OK;
}

void folio_exchange_destroy(folio_exchange_t **px)
{
    if (!px || !*px) return;
    free(*px);
    *px = NULL;
}

int folio_exchange_rank(const folio_exchange_t *x) { return x->rank; }
void folio_exchange_set_nccl(folio_exchange_t *x, void *nccl_comm) { x->nccl = nccl_comm; }
void *fx_nccl(const folio_exchange_t *x) { return x->nccl; }
void fx_add_seconds(folio_exchange_t *x, double s) { x->seconds += s; }
void fx_add_gather_seconds(folio_exchange_t *x, double s) { x->gather_seconds += s; }
int folio_exchange_size(const folio_exchange_t *x) { return x->size; }
double folio_exchange_seconds(const folio_exchange_t *x) { return x->seconds; }
double folio_exchange_gather_seconds(const folio_exchange_t *x) { return x->gather_seconds; }

/* MPI counts are int: move large buffers in chunks of whole rows. */
#define CHUNK_BYTES ((size_t)1 << 30)

folio_status_t fx_halo(folio_exchange_t *x, const float *first, const float *last, float *left,
                       float *right, size_t rows_l, size_t rows_r, size_t row_floats)
{
    /* Send my first rows to the left neighbour (its right halo) and receive
     * my right halo from the right neighbour; then the mirror image. */
    if (x->local) return FOLIO_OK; /* no neighbours */
    double t = folio_now();
    int L = x->rank > 0 ? x->rank - 1 : MPI_PROC_NULL;
    int R = x->rank + 1 < x->size ? x->rank + 1 : MPI_PROC_NULL;
    size_t nl = rows_l * row_floats, nr = rows_r * row_floats;
    FOLIO_CHECK_GENERIC(nl < (size_t)1 << 31 && nr < (size_t)1 << 31, FOLIO_ERR_TOO_LARGE, "halo too large");
    /* left halo size of rank r+1 == my right-edge rows: both sides use W. */
    FOLIO_CHECK_MPI(MPI_Sendrecv(first, L == MPI_PROC_NULL ? 0 : (int)nl, MPI_FLOAT, L, 11,
                                 right, R == MPI_PROC_NULL ? 0 : (int)nr, MPI_FLOAT, R, 11, x->comm,
                                 MPI_STATUS_IGNORE));
    FOLIO_CHECK_MPI(MPI_Sendrecv(last, R == MPI_PROC_NULL ? 0 : (int)nr, MPI_FLOAT, R, 12,
                                 left, L == MPI_PROC_NULL ? 0 : (int)nl, MPI_FLOAT, L, 12, x->comm,
                                 MPI_STATUS_IGNORE));
    x->seconds += folio_now() - t;
    return FOLIO_OK;
}

/* MPI counts and displacements (in floats) of every rank's rows
 * [row0[r], row0[r+1]); *counts owns both arrays (free it). */
static folio_status_t row_counts(int P, const uint64_t *row0, size_t row_floats, int **counts, int **displs)
{
    int *c = malloc(2 * (size_t)P * sizeof *c);
    FOLIO_CHECK_ALLOC(c);
    for (int r = 0; r < P; r++) {
        uint64_t n = (row0[r + 1] - row0[r]) * row_floats, o = row0[r] * row_floats;
        if (n >= (uint64_t)1 << 31 || o >= (uint64_t)1 << 31) {
            free(c);
            FOLIO_CHECK_GENERIC(false, FOLIO_ERR_TOO_LARGE, "exchange: %llu rows too many for MPI counts",
                                (unsigned long long)row0[P]);
        }
        c[r] = (int)n;
        c[P + r] = (int)o;
    }
    *counts = c;
    *displs = c + P;
    return FOLIO_OK;
}

/* Rows of every rank to every rank (to_all) or to rank 0 only: block
 * summaries are an exchange, block vectors a result gather (timed apart). */
static folio_status_t rows_collect(folio_exchange_t *x, const float *mine, const uint64_t *row0, size_t row_floats,
                                   float *all, bool to_all)
{
    if (x->local) {
        if (mine != all + row0[0] * row_floats)
            memmove(all + row0[0] * row_floats, mine, (row0[1] - row0[0]) * row_floats * sizeof *all);
        return FOLIO_OK;
    }
    double t = folio_now();
    int *counts = NULL, *displs;
    FOLIO_TRY(row_counts(x->size, row0, row_floats, &counts, &displs));
    int rc;
    if (to_all) {
        rc = MPI_Allgatherv(mine, counts[x->rank], MPI_FLOAT, all, counts, displs, MPI_FLOAT, x->comm);
    } else {
        /* rank 0's rows are in place already when mine points into all */
        const void *sb = x->rank == 0 && mine == all + row0[0] * row_floats ? MPI_IN_PLACE : (const void *)mine;
        rc = MPI_Gatherv(sb, counts[x->rank], MPI_FLOAT, all, counts, displs, MPI_FLOAT, 0, x->comm);
    }
    free(counts);
    *(to_all ? &x->seconds : &x->gather_seconds) += folio_now() - t;
    FOLIO_CHECK_GENERIC(rc == MPI_SUCCESS, FOLIO_ERR_MPI, "%s of block rows failed",
                        to_all ? "MPI_Allgatherv" : "MPI_Gatherv");
    return FOLIO_OK;
}

folio_status_t fx_allgather_rows(folio_exchange_t *x, const float *mine, const uint64_t *row0,
                                 size_t row_floats, float *all)
{
    return rows_collect(x, mine, row0, row_floats, all, true);
}

folio_status_t fx_reduce_i64(folio_exchange_t *x, int64_t *buf, size_t n)
{
    /* Integer sums are exact: the order MPI picks cannot change them. */
    if (x->local) return FOLIO_OK;
    double t = folio_now();
    size_t step = CHUNK_BYTES / sizeof *buf;
    for (size_t o = 0; o < n; o += step) {
        int c = (int)(n - o < step ? n - o : step);
        void *sb = x->rank == 0 ? MPI_IN_PLACE : (void *)(buf + o);
        FOLIO_CHECK_MPI(MPI_Reduce(sb, buf + o, c, MPI_INT64_T, MPI_SUM, 0, x->comm));
    }
    x->gather_seconds += folio_now() - t;
    return FOLIO_OK;
}

folio_status_t fx_allgather_u64(folio_exchange_t *x, const uint64_t *mine, int n, uint64_t *all)
{
    if (x->local) {
        memmove(all, mine, (size_t)n * sizeof *all);
        return FOLIO_OK;
    }
    /* The first call of a document: its wait is the other ranks still
     * receiving the document, so it counts with the gathers, not with the
     * summary exchange. */
    double t = folio_now();
    FOLIO_CHECK_MPI(MPI_Allgather(mine, n, MPI_UINT64_T, all, n, MPI_UINT64_T, x->comm));
    x->gather_seconds += folio_now() - t;
    return FOLIO_OK;
}

folio_status_t fx_gather_rows(folio_exchange_t *x, const float *mine, const uint64_t *row0, size_t row_floats,
                              float *all)
{
    return rows_collect(x, mine, row0, row_floats, all, false);
}

folio_status_t fx_gather_each(folio_exchange_t *x, const void *blob, size_t bytes, fx_blob_fn fn, void *ctx)
{
    if (x->local) return fn ? fn(ctx, 0, blob, bytes) : FOLIO_OK;
    double t = folio_now();
    const int P = x->size;
    uint64_t sz = bytes, *sizes = NULL;
    if (x->rank == 0) {
        sizes = malloc((size_t)P * sizeof *sizes);
        FOLIO_CHECK_ALLOC(sizes);
    }
    int rc = MPI_Gather(&sz, 1, MPI_UINT64_T, sizes, 1, MPI_UINT64_T, 0, x->comm);
    if (rc != MPI_SUCCESS) { free(sizes); FOLIO_CHECK_MPI(rc); }
    folio_status_t st = FOLIO_OK;
    if (x->rank != 0) {
        for (size_t o = 0; o < bytes; o += CHUNK_BYTES) {
            int c = (int)(bytes - o < CHUNK_BYTES ? bytes - o : CHUNK_BYTES);
            FOLIO_CHECK_MPI(MPI_Send((const char *)blob + o, c, MPI_BYTE, 0, 22, x->comm));
        }
    } else {
        if (fn) st = fn(ctx, 0, blob, bytes);
        size_t maxb = 0;
        for (int p = 1; p < P; p++) if (sizes[p] > maxb) maxb = sizes[p];
        char *tmp = maxb ? malloc(maxb) : NULL;
        if (maxb && !tmp) { free(sizes); return FOLIO_ERR_NOMEM; }
        /* every blob is received even after an error, so no rank blocks */
        for (int p = 1; p < P; p++) {
            for (size_t o = 0; o < sizes[p]; o += CHUNK_BYTES) {
                int c = (int)(sizes[p] - o < CHUNK_BYTES ? sizes[p] - o : CHUNK_BYTES);
                rc = MPI_Recv(tmp + o, c, MPI_BYTE, p, 22, x->comm, MPI_STATUS_IGNORE);
                if (rc != MPI_SUCCESS) { free(tmp); free(sizes); FOLIO_CHECK_MPI(rc); }
            }
            if (st == FOLIO_OK && fn) st = fn(ctx, p, tmp, sizes[p]);
        }
        free(tmp);
    }
    free(sizes);
    x->gather_seconds += folio_now() - t;
    return st;
}

folio_status_t fx_gather_spans(folio_exchange_t *x, const float *mine, uint64_t lo, uint64_t hi, size_t row_floats,
                               uint64_t n_rows, float *all)
{
    folio_status_t st = FOLIO_OK;
    if (!(lo <= hi && hi <= n_rows)) { /* still take part, with no rows, so that no rank blocks */
        folio_log(FOLIO_LOG_ERROR, "gather: rows [%llu, %llu) of %llu", (unsigned long long)lo,
                  (unsigned long long)hi, (unsigned long long)n_rows);
        st = FOLIO_ERR_ARG;
        lo = hi = 0;
    }
    if (x->local || x->rank == 0) {
        if (hi > lo && mine != all + lo * row_floats)
            memmove(all + lo * row_floats, mine, (hi - lo) * row_floats * sizeof *all);
        if (x->local) return st;
    }
    double t = folio_now();
    const int P = x->size;
    uint64_t mine2[2] = {lo, hi}, *sp = NULL;
    if (x->rank == 0) {
        sp = malloc(2 * (size_t)P * sizeof *sp);
        FOLIO_CHECK_ALLOC(sp);
    }
    int rc = MPI_Gather(mine2, 2, MPI_UINT64_T, sp, 2, MPI_UINT64_T, 0, x->comm);
    if (rc != MPI_SUCCESS) { free(sp); FOLIO_CHECK_MPI(rc); }
    const size_t rb = row_floats * sizeof(float);
    if (x->rank != 0) {
        const size_t bytes = (hi - lo) * rb;
        for (size_t o = 0; o < bytes; o += CHUNK_BYTES) {
            int c = (int)(bytes - o < CHUNK_BYTES ? bytes - o : CHUNK_BYTES);
            FOLIO_CHECK_MPI(MPI_Send((const char *)mine + o, c, MPI_BYTE, 0, 23, x->comm));
        }
    } else {
        /* Each rank's rows are received straight into place.  A bad span
         * (outside the table) is still received, into a scratch row buffer
         * piece by piece, so that no rank blocks; the gather then fails. */
        for (int p = 1; p < P; p++) {
            const uint64_t a = sp[2 * p], b = sp[2 * p + 1];
            const size_t bytes = b > a ? (b - a) * rb : 0;
            char *dst = (char *)(all + a * row_floats), *scratch = NULL;
            if (b > a && (b > n_rows)) {
                folio_log(FOLIO_LOG_ERROR, "gather: rank %d sent rows [%llu, %llu) of %llu", p,
                          (unsigned long long)a, (unsigned long long)b, (unsigned long long)n_rows);
                st = FOLIO_ERR_INTERNAL;
                scratch = malloc(CHUNK_BYTES < bytes ? CHUNK_BYTES : bytes);
                if (!scratch) { free(sp); return FOLIO_ERR_NOMEM; }
            }
            for (size_t o = 0; o < bytes; o += CHUNK_BYTES) {
                int c = (int)(bytes - o < CHUNK_BYTES ? bytes - o : CHUNK_BYTES);
                rc = MPI_Recv(scratch ? scratch : dst + o, c, MPI_BYTE, p, 23, x->comm, MPI_STATUS_IGNORE);
                if (rc != MPI_SUCCESS) { free(scratch); free(sp); FOLIO_CHECK_MPI(rc); }
            }
            free(scratch);
        }
    }
    free(sp);
    x->gather_seconds += folio_now() - t;
    return st;
}
