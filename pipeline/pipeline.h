/* pipeline/pipeline.h — the ingest job: plan -> work -> commit.
 *
 * Rank 0 of cfg->comm reads and plans; every rank works; rank 0 is the single
 * LMDB writer.  A single process (MPI singleton) runs all three stages. */
#ifndef FOLIO_PIPELINE_H
#define FOLIO_PIPELINE_H

#include <mpi.h>

#include "../common/common.h"
#include "../workers/workers.h"

typedef struct {
    const char *db;          /* store path                                   */
    const char *pattern;     /* pattern spec string, NULL = default          */
    folio_backend_t backend;
    int threads;             /* CPU worker threads per rank, 0 = all cores   */
    bool progress;           /* progress line on stderr (rank 0)             */
    bool buffered_writes;    /* the store's writer without MDB_WRITEMAP
                              * (folio_store_opts_t.buffered_writes)       */
    MPI_Comm comm;           /* the job's communicator (never WORLD inside)  */
} folio_ingest_cfg_t;

typedef struct {
    uint64_t seen, committed, duplicate, empty, rejected, tokens;
    uint64_t bytes;
    double seconds;
    double setup_seconds;    /* rank 0: backend set-up (CUDA contexts)       */
    double nccl_seconds;     /* rank 0: making the NCCL communicator, at the
                                first document split over GPUs (0: none)    */
    double plan_seconds;     /* rank 0: pass 1 (read, validate, analyze, classify) */
    double prepare_seconds;  /* rank 0: pass 2 reading and analysis (rounds,
                                on the feeder thread)                       */
    double prepare_wait_seconds; /* rank 0: the main thread waiting for the
                                feeder (what the overlap left)              */
    double commit_seconds;   /* rank 0: LMDB commits (on the commit thread,
                                overlapped with the next round)             */
    double commit_wait_seconds; /* rank 0: the main thread waiting for the
                                commit thread (what the overlap left)       */
    uint64_t map_growths;    /* rank 0: the store's map grown, and write    */
    uint64_t txn_reruns;     /* txns run again because it filled            */
    double finish_seconds;   /* rank 0: after the last round: the store's
                                sync to disk and close, the backend's end   */
    double compute_seconds;  /* rank 0: time in encodes (incl. exchange)   */
    double exchange_seconds; /* rank 0: time in halo/summary exchange      */
    double results_wait_seconds; /* rank 0: waiting for the other ranks'
                                results after its own share of a round     */
    double ranks_idle_seconds; /* the other ranks, summed: time outside
                                their share of the rounds (waiting for a
                                round, or for rank 0 to take their results) */
    uint64_t rank0_tokens;   /* tokens of whole documents rank 0 computed
                                (its share; split documents not counted)   */
    uint64_t donated_docs, donated_tokens; /* rank 0: whole documents of its
                                share it gave to ranks that were done      */
    long peak_anon_kb;       /* rank 0: largest anonymous RSS seen at round ends
                                (the store's mapped file pages excluded)   */
} folio_ingest_counts_t;

/* Runs the whole ingest of inputs (files, directories, .jsonl) into cfg->db.
 * Every document ends committed, duplicate, empty or rejected (with a message
 * on stderr naming the input and the reason); counts reconcile.  Returns
 * FOLIO_OK when the job ran to the end (documents may still have been
 * rejected: check counts), an error when the job itself failed. */
folio_status_t folio_ingest_run(const folio_ingest_cfg_t *cfg, const char *const *inputs,
                                int n_inputs, folio_ingest_counts_t *counts);

#endif
