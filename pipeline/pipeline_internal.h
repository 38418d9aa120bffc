/* pipeline/pipeline_internal.h — the planner's data structures (not part of
 * the public API): an in-memory hash table for per-term state, and on-disk
 * per-document state (scratch.c). */
#ifndef FOLIO_PIPELINE_INTERNAL_H
#define FOLIO_PIPELINE_INTERNAL_H

#include "../common/common.h"

/* uint64 key -> int64 value; key 0 is reserved as "empty", so callers must
 * map a zero key to something else (term hashes of 0 are remapped to 1). */
typedef struct {
    uint64_t *keys;
    int64_t *vals;
    size_t cap, n; /* cap is a power of two */
} folio_u64map_t;

folio_status_t folio_u64map_init(folio_u64map_t *m, size_t expect);
void folio_u64map_free(folio_u64map_t *m);
/* Pointer to the value slot of key (inserted with 0 when absent), or NULL
 * when out of memory. Valid until the next insertion. */
int64_t *folio_u64map_slot(folio_u64map_t *m, uint64_t key);
/* Pointer to the value of key, or NULL when absent. */
int64_t *folio_u64map_find(const folio_u64map_t *m, uint64_t key);

static inline uint64_t folio_u64map_key(uint64_t k) { return k ? k : 1; }

/* ------------------------------------------------------------ plan log
 * One entry per input document, in input order: written by pass 1, read back
 * by pass 2.  Kept in an unlinked file in dir (the store's directory), so
 * memory does not grow with the number of documents. */
enum { FOLIO_PLAN_SKIP = 0, FOLIO_PLAN_ENCODE = 1, FOLIO_PLAN_DUP = 2 };

typedef struct {
    uint8_t action;    /* FOLIO_PLAN_*                                        */
    uint8_t hash[16];  /* content hash, to notice inputs changed between passes */
    char dup_of[512];  /* FOLIO_PLAN_DUP: the id holding this content         */
} folio_plan_entry_t;

typedef struct folio_planlog folio_planlog_t;

folio_status_t folio_planlog_create(const char *dir, folio_planlog_t **out);
void folio_planlog_destroy(folio_planlog_t **p); /* NULL-safe, nulls *p */
folio_status_t folio_planlog_append(folio_planlog_t *p, const folio_plan_entry_t *e);
/* Ends writing; entries are then read back from the first one. */
folio_status_t folio_planlog_rewind(folio_planlog_t *p);
/* The next entry, or FOLIO_EOF after the last one. */
folio_status_t folio_planlog_next(folio_planlog_t *p, folio_plan_entry_t *e);

/* ------------------------------------------------------------ job index
 * The ids and content hashes of the documents this job will encode (exact
 * keys, on disk: an unlinked private LMDB file in dir), for duplicate and
 * same-id detection within the job.  Finds see every earlier put. */
typedef struct folio_jobidx folio_jobidx_t;

folio_status_t folio_jobidx_create(const char *dir, folio_jobidx_t **out);
void folio_jobidx_destroy(folio_jobidx_t **x); /* NULL-safe, nulls *x */
/* hash of the document id was put with; *found false when none (ids that
 * are empty or longer than FOLIO_STORE_MAX_ID are never found). */
folio_status_t folio_jobidx_find_id(folio_jobidx_t *x, const char *id, uint8_t hash[16], bool *found);
/* id (into id[cap]) of the document put with this content hash. */
folio_status_t folio_jobidx_find_content(folio_jobidx_t *x, const uint8_t hash[16], char *id, size_t cap,
                                         bool *found);
/* Records id (1..FOLIO_STORE_MAX_ID bytes) with content hash, and when
 * content is true also hash -> id (id is where this content will be). */
folio_status_t folio_jobidx_put(folio_jobidx_t *x, const char *id, const uint8_t hash[16], bool content);

/* ------------------------------------------------------------ hand-off
 * A thread that runs jobs in submission order, one at a time (rank 0's
 * commits, overlapped with the next round's compute).  run() is called on
 * the thread; free_job() after it (or instead of it, once a job failed:
 * nothing runs past the first error).  A job is owned by the hand-off from
 * submit on, whatever submit returns. */
typedef struct folio_handoff folio_handoff_t;
typedef folio_status_t (*folio_handoff_fn)(void *ctx, void *job);
typedef void (*folio_handoff_free_fn)(void *job);

folio_status_t folio_handoff_create(folio_handoff_fn run, folio_handoff_free_fn free_job, void *ctx,
                                    folio_handoff_t **out);
/* Waits until the thread is idle (so at most one job is in flight), then
 * hands job over.  Returns the first error of an earlier job (job is then
 * freed, not run). */
folio_status_t folio_handoff_submit(folio_handoff_t *h, void *job);
/* Waits until every submitted job is done; the first error of any job. */
folio_status_t folio_handoff_wait(folio_handoff_t *h);
/* Runs what was submitted, ends the thread; the first error of any job. */
folio_status_t folio_handoff_finish(folio_handoff_t *h);
/* Seconds the thread spent in run() and free_job() so far. */
double folio_handoff_busy_seconds(folio_handoff_t *h);
/* Finishes (if not yet) and frees; NULL-safe, nulls *h. */
void folio_handoff_destroy(folio_handoff_t **h);


/* ------------------------------------------------------------ balance
 * How fast each rank computes whole documents (tokens a second, smoothed
 * over its recent rounds), and a round's packing by it: the round ends
 * when its slowest rank does, so a rank that also reads and commits (rank 0)
 * or runs on a slower node gets a lighter share instead of making the
 * others wait.  Where a document is computed never changes its results, so
 * the packing may follow timings. */
typedef struct {
    int P;
    double *rate;      /* (P) tokens per second, 0 = not measured yet      */
    double rank0_bias; /* rank 0 is packed as if this much faster (1 after
                          init; > 1 where it gives the rest of its share
                          away at the round's end, see round.c)            */
} folio_balance_t;

/* Weight of a new measurement in the smoothed rate, and the slowest rate a
 * rank is credited with, as a share of the fastest (so that a rank that
 * once measured slow still gets work and is measured again). */
#define FOLIO_BALANCE_NEW 0.5
#define FOLIO_BALANCE_MIN_SHARE 0.125

folio_status_t folio_balance_init(folio_balance_t *b, int P);
void folio_balance_free(folio_balance_t *b); /* NULL-safe */
/* Rank r computed `tokens` in `seconds` (one round's whole documents);
 * ignored when either is not positive. */
void folio_balance_observe(folio_balance_t *b, int r, uint64_t tokens, double seconds);
/* Packs n documents, of ntok[k] tokens, given largest first, onto the
 * ranks: each onto the rank that would finish it first, counting what it
 * already got, at its rate (equal rates until every rank was measured:
 * then, with rank0_bias 1, this is the classic largest-first packing by
 * tokens); ties go to the lower rank.  owner[k] = the rank of document k. */
void folio_balance_pack(const folio_balance_t *b, const uint32_t *ntok, int64_t n, int *owner);

#endif
