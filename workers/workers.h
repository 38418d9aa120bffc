/* workers/workers.h — a rank's work on its documents: backend choice, the
 * encoder run (embedding -> L sparse-attention layers -> pooling and
 * salience), and (for documents split over ranks) the exchange of halos and
 * summaries.
 *
 * A worker owns scratch buffers reused across documents; results handed out
 * stay valid until the next call on the same worker. */
#ifndef FOLIO_WORKERS_H
#define FOLIO_WORKERS_H

#include "../attn/attn.h"
#include "../common/common.h"
#include "../shard/shard.h"
#include "../store/store.h" /* folio_doc_results_t: what a worker produces */

typedef enum { FOLIO_BACKEND_AUTO, FOLIO_BACKEND_CPU, FOLIO_BACKEND_CUDA } folio_backend_t;

/* Seed of the hashed embedding.  Part of the encoder's definition: changing
 * it changes every stored vector, so it is a constant, not an option. */
#define FOLIO_EMBED_SEED 0x666f6c696f656d62ull /* "folioemb" */

typedef struct {
    folio_pattern_t pattern; /* as configured (budget mode resolved per doc) */
    folio_backend_t backend; /* AUTO/CPU/CUDA as asked                       */
    int threads;             /* 0 = all cores                                */
} folio_worker_cfg_t;

typedef struct folio_worker folio_worker_t;

folio_status_t folio_worker_create(const folio_worker_cfg_t *cfg, folio_worker_t **out);
void folio_worker_destroy(folio_worker_t **w); /* NULL-safe, nulls *w */

/* Canonical spec of the worker's pattern (stored with the results). */
const char *folio_worker_pattern_spec(const folio_worker_t *w);

/* Encodes one analyzed document with per-token weights (IDF, (n_tokens)).
 * res gets pointers into the worker's buffers (valid until the next call):
 * sentence, block, section and document vectors and salience. */
folio_status_t folio_worker_encode(folio_worker_t *w, const folio_doc_t *doc, const float *weights,
                                   folio_doc_results_t *res);

/* IDF weight used for document and query tokens alike: BM25's
 * ln(1 + (N - df + 0.5) / (df + 0.5)), floored at a small positive value so
 * no token vanishes entirely. */
static inline float folio_idf(uint64_t n_docs, uint64_t df)
{
    if (df > n_docs) df = n_docs;
    double v = log(1.0 + ((double)n_docs - (double)df + 0.5) / ((double)df + 0.5));
    return (float)(v < 0.05 ? 0.05 : v);
}

#endif
