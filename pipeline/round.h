/* pipeline/round.h — one round of distributed work (internal to pipeline). */
#ifndef FOLIO_ROUND_H
#define FOLIO_ROUND_H

#include "pipeline.h"
#include "pipeline_internal.h"

typedef struct {
    folio_doc_t doc;   /* analyzed                                           */
    float *weights;    /* (doc.n_tokens) IDF weights                         */
} folio_round_item_t;

/* Rank 0's commit of a round, in item order: n items with each one's
 * encode status, results (NULL when est[i] != OK) and the rank that computed
 * it (-1: all ranks, a split document).  res[i] points into bufs[i]; the
 * callback may keep a buffer past the call by setting bufs[i] to NULL (it
 * then frees it), and may move documents out of items (zeroing them), so
 * that the commit itself can run later, on another thread. */
typedef folio_status_t (*folio_round_commit_fn)(void *ctx, folio_round_item_t *items, const folio_status_t *est,
                                                const folio_doc_results_t *res, const int *from_rank,
                                                char **bufs, int64_t n);

/* Documents shorter than this are encoded one per thread, longer ones with
 * all of the rank's threads inside the document. */
#define FOLIO_ROUND_SMALL_TOKENS 16384

/* Short documents a GPU rank encodes at once, each on its own stream (at
 * most; --threads if lower).  Measured on a 16-core H200 host, 1.09M tokens
 * in 906 documents, rank-0 compute: 2 streams 0.21 s, 4 0.14, 6 0.13, 8
 * 0.14-0.15, 12 0.16, 16 0.18-0.19, 32 0.22-0.24, 64 0.27: past ~6 the
 * host threads contend (for the CUDA driver, and for the cores with the
 * analysis of the next round) more than the device gains. */
#define FOLIO_ROUND_GPU_STREAMS 6

/* Rank 0 is packed as if this much faster than measured, on the CPU, where
 * it gives what is left of its share to ranks that finished theirs. */
#define FOLIO_ROUND_RANK0_BIAS 1.1

typedef struct {
    MPI_Comm comm;           /* all ranks of the job                         */
    int threads;             /* this rank's threads                          */
    int doc_threads;         /* short documents encoded at once, one thread
                                and one thread worker each: threads on the
                                CPU, fewer on a GPU (FOLIO_ROUND_GPU_STREAMS) */
    folio_worker_t *worker;  /* threads-wide worker (split / long documents) */
    folio_worker_t **thread_workers; /* (doc_threads) one-thread workers     */
    bool gpu;                /* the worker runs on a GPU (all ranks do)      */
    void *nccl;              /* NCCL communicator over comm (GPU, P > 1),
                                made at the first split document: a corpus
                                of whole documents never needs one (1-1.5 s
                                of set-up on 2-4 GPUs)                       */
    int device;              /* this rank's CUDA device (for the NCCL one)   */
    double nccl_seconds;     /* what making it took (ingest's counts)        */
    folio_round_commit_fn commit; /* rank 0 only */
    void *commit_ctx;
    folio_balance_t *balance; /* rank 0: the ranks' rates (packing); NULL =
                                 pack by tokens */
    double compute_seconds, exchange_seconds;
    /* rank 0: waiting for the other ranks' results once its own share was
     * done; the other ranks' seconds of waiting for a round (header and
     * payloads: rank 0 planning, reading, committing or still computing),
     * summed over them, as they report it with their results */
    double results_wait_seconds, ranks_idle_seconds;
    uint64_t whole_tokens;   /* tokens of the whole documents this rank computed */
    uint64_t donated_docs, donated_tokens; /* rank 0: whole documents it gave
                                to ranks that had finished their share      */
    double round_idle_start; /* worker ranks: when their last share ended */
    bool profile;            /* rank 0: a line per round (FOLIO_PROFILE)     */
} folio_round_ctx_t;

/* Collective over rc->comm.  Rank 0 passes its items (n_items >= 0, or -1
 * to end the job); other ranks pass NULL/0 and learn the round from rank 0.
 * Returns FOLIO_EOF when rank 0 ended the job. */
folio_status_t folio_round_run(folio_round_ctx_t *rc, folio_round_item_t *items, int64_t n_items);

#endif
