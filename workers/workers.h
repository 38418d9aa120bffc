/* workers/workers.h — a rank's work on its documents: backend choice, the
 * encoder run (embedding -> L sparse-attention layers -> pooling and
 * salience), and (for documents split over ranks) the exchange of halos and
 * summaries.
 *
 * A worker owns scratch buffers reused across documents; results handed out
 * stay valid until the next call on the same worker. */
#ifndef FOLIO_WORKERS_H
#define FOLIO_WORKERS_H

#include <mpi.h>

#include "../attn/attn.h"
#include "../common/common.h"
#include "../shard/shard.h"
#include "../store/store.h" /* folio_doc_results_t: what a worker produces */

typedef enum { FOLIO_BACKEND_AUTO, FOLIO_BACKEND_CPU, FOLIO_BACKEND_CUDA } folio_backend_t;

typedef struct {
    folio_pattern_t pattern; /* as configured (budget mode resolved per doc) */
    folio_backend_t backend; /* AUTO/CPU/CUDA as asked                       */
    int threads;             /* 0 = all cores                                */
    int device;              /* CUDA device (node-local rank)                */
    bool announce;           /* log which backend was chosen                 */
    bool long_docs;          /* takes long documents: on a GPU, its pinned
                              * staging buffers are made at creation, not
                              * inside the first long document's time     */
} folio_worker_cfg_t;

typedef struct folio_worker folio_worker_t;

folio_status_t folio_worker_create(const folio_worker_cfg_t *cfg, folio_worker_t **out);
void folio_worker_destroy(folio_worker_t **w); /* NULL-safe, nulls *w */

/* True when the worker runs its layers on a GPU. */
bool folio_worker_on_gpu(const folio_worker_t *w);

/* Canonical spec of the worker's pattern (stored with the results). */
const char *folio_worker_pattern_spec(const folio_worker_t *w);

/* Where a document's results are written (rank 0 of its exchange), when
 * the caller owns the memory they end up in (a result message): tables of
 * n_sents x d, n_blocks x d, n_sections x d, d and n_sents floats
 * (folio_worker_result_shape gives d and n_blocks).  Saves copying
 * hundreds of MB of a long document's results after the encode. */
typedef struct {
    float *sent, *blocks, *sections, *doc, *salience;
} folio_result_dest_t;

/* d and the number of blocks of doc's results (its pattern resolved). */
folio_status_t folio_worker_result_shape(const folio_worker_t *w, const folio_doc_t *doc, uint32_t *d,
                                         uint32_t *n_blocks);

/* Encodes one analyzed document, whole, on this rank (no MPI call: any
 * thread may use it with a worker of its own), with per-token weights
 * (IDF, (n_tokens)).
 * res gets pointers to the sentence, block, section and document vectors
 * and salience: into dest's tables when dest is not NULL, else into the
 * worker's buffers (valid until the next call). */
folio_status_t folio_worker_encode(folio_worker_t *w, const folio_doc_t *doc, const float *weights,
                                   const folio_result_dest_t *dest, folio_doc_results_t *res);

/* ------------------------------------------------------------ device warm-up
 * Making a CUDA context and loading the kernels takes ~0.15-0.2 s on an
 * H200; started on a thread of its own before MPI_Init, it overlaps MPI's
 * start-up and the job's planning instead of delaying the first document.
 * The device is the one the worker will take (node-local rank modulo the
 * devices): the launcher's node-local rank (Open MPI, MPICH/Hydra or
 * Slurm variables), 0 for a process started without a launcher, and no
 * warm-up under a launcher that does not give it.  Without a CUDA
 * build or device the thread ends at once; nothing fails.  end joins it
 * (NULL-safe, nulls *w); the worker created afterwards finds the context. */
typedef struct folio_gpu_warmup folio_gpu_warmup_t;
void folio_gpu_warmup_start(folio_gpu_warmup_t **out); /* *out NULL when no thread was started */
void folio_gpu_warmup_end(folio_gpu_warmup_t **w);

/* ------------------------------------------------------------ exchange
 * What ranks sharing one document exchange every layer, behind one
 * interface so that the MPI path (CPU ranks) and the NCCL path (GPU ranks)
 * are interchangeable.  Ranks of the exchange hold contiguous, increasing
 * token ranges of the document, each cut at block boundaries and at least W
 * tokens long (so a halo comes from the direct neighbour only). */
typedef struct folio_exchange folio_exchange_t;

/* MPI implementation over comm (not duplicated; the caller keeps it alive). */
folio_status_t folio_exchange_create_mpi(MPI_Comm comm, folio_exchange_t **out);
/* Device buffers of the GPU path travel through NCCL: a communicator over
 * the same ranks as comm, bootstrapped by MPI_Bcast of the unique id.
 * FOLIO_ERR_UNSUPPORTED without CUDA.  Collective over comm. */
folio_status_t folio_nccl_create(MPI_Comm comm, int device, void **nccl_comm);
void folio_nccl_destroy(void **nccl_comm);
/* Attaches a NCCL communicator (not owned) to an MPI exchange. */
void folio_exchange_set_nccl(folio_exchange_t *x, void *nccl_comm);
/* A single-rank exchange that makes no MPI call (usable from any thread):
 * the whole document on one rank. */
folio_status_t folio_exchange_create_local(folio_exchange_t **out);
void folio_exchange_destroy(folio_exchange_t **x); /* NULL-safe */
int folio_exchange_rank(const folio_exchange_t *x);
int folio_exchange_size(const folio_exchange_t *x);
/* Seconds spent inside exchange calls since creation (for the benchmark's
 * "exchange share of step time"): halos and block summaries of the layers
 * (waits for slower ranks included), not the results travelling to rank 0
 * (folio_exchange_gather_seconds). */
double folio_exchange_seconds(const folio_exchange_t *x);
double folio_exchange_gather_seconds(const folio_exchange_t *x);

/* Per-call MPI checks log file, line, rank and MPI's own message. */
#define FOLIO_CHECK_MPI(call)                                                  \
    do {                                                                       \
        int folio_mpi_rc_ = (call);                                            \
        if (folio_mpi_rc_ != MPI_SUCCESS) {                                    \
            char folio_mpi_msg_[MPI_MAX_ERROR_STRING];                         \
            int folio_mpi_len_ = 0;                                            \
            MPI_Error_string(folio_mpi_rc_, folio_mpi_msg_, &folio_mpi_len_);  \
            folio_log_at(__FILE__, __LINE__, "MPI: %s: %s", #call, folio_mpi_msg_); \
            return FOLIO_ERR_MPI;                                              \
        }                                                                      \
    } while (0)

/* Encodes the tokens [t0, t1) of an analyzed document (every rank of x holds
 * the whole analyzed doc and its weights; ranks' ranges are contiguous in
 * rank order and cover [0, n)).  Collective over x.  On the exchange's rank 0
 * res receives the whole document's results (in dest's tables, or the
 * worker's buffers valid until the next call; see folio_worker_encode);
 * other ranks get res zeroed and ignore dest.  A single-rank exchange encodes the whole
 * document: the results are bit-identical whatever the number of ranks. */
folio_status_t folio_worker_encode_range(folio_worker_t *w, folio_exchange_t *x,
                                         const folio_doc_t *doc, const float *weights,
                                         uint64_t t0, uint64_t t1, const folio_result_dest_t *dest,
                                         folio_doc_results_t *res);

/* The pattern resolved for a document of n tokens (budget mode). */
folio_status_t folio_worker_resolve(const folio_worker_t *w, uint64_t n, folio_pattern_t *out);

#endif
