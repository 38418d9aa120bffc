/* pipeline/ingest.c — the ingest job: plan -> work -> commit.
 *
 * Pass 1 (plan, rank 0) streams every input once: validation, analysis,
 * content hash, classification against the store and against earlier
 * documents of this job, and the document frequencies of the documents this
 * job will commit.  The encoder's IDF weights come from
 *     df = df(store at job start) - df(versions being replaced) + df(new docs)
 * so they are the same whether the job runs uninterrupted or is killed and
 * run again (the store's df only ever counts committed documents, and the
 * planner only counts what is not committed yet).
 *
 * Pass 2 (work + commit) streams the inputs again in the same order, encodes
 * the planned documents and commits each in its own transaction with its
 * done-marker.
 *
 * Memory does not grow with the number of documents: the per-document plan
 * (action, hash, duplicate target) goes to an unlinked file and is read back
 * in order, and the ids and hashes of the documents this job encodes (for
 * duplicates and repeated ids within the job) to an on-disk index (both in
 * scratch.c).  What stays in memory is a round of documents and results and
 * one entry per distinct term of the new documents (the df delta, then the
 * IDF weights): it grows with the vocabulary, not with the documents.
 */
#include "pipeline.h"

#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../shard/shard.h"
#include "../store/store.h"
#include "pipeline_internal.h"
#include "round.h"

typedef struct {
    const folio_ingest_cfg_t *cfg;
    folio_store_t *store;
    folio_ingest_counts_t *c;
    folio_planlog_t *plan;      /* one entry per input document (on disk)   */
    uint64_t plan_n;            /* entries written                          */
    folio_jobidx_t *jobidx;     /* ids and hashes of planned encodes (disk)  */
    /* stem hash -> change of df by this job (pass 1); build_idf then turns
     * each value into the float bits of the term's IDF weight, in place */
    folio_u64map_t terms;
    int64_t n_docs_delta;
    uint64_t n_docs_store;
    uint64_t planned_docs, planned_bytes, planned_tokens;
    double t0, last_progress;
    int analysis_threads;       /* rank 0's reading and analysis: its node's
                                   threads (see folio_ingest_run) */
} ingest_t;

/* ------------------------------------------------------------ progress */

static void progress(ingest_t *g, bool final, const char *stage, uint64_t done, uint64_t total,
                     uint64_t bytes, uint64_t tokens)
{
    if (!g->cfg->progress) return;
    double now = folio_now();
    if (!final && now - g->last_progress < 0.5) return;
    g->last_progress = now;
    double el = now - g->t0;
    double mb = (double)bytes / 1e6;
    fprintf(stderr, "\r%s: %llu", stage, (unsigned long long)done);
    if (total) fprintf(stderr, "/%llu", (unsigned long long)total);
    fprintf(stderr, " docs, %.1f MB, %.2f Mtok/s", mb, el > 0 ? (double)tokens / el / 1e6 : 0.0);
    if (total && done && done < total) {
        double eta = el / (double)done * (double)(total - done);
        fprintf(stderr, ", ETA %.0fs   ", eta);
    } else {
        fputs("            ", stderr);
    }
    if (final) fputc('\n', stderr);
    fflush(stderr);
}

/* ------------------------------------------------------------ plan */

/* The distinct stem hashes of an analyzed document (as map keys), in a
 * malloc'd array: a hash set, O(n) -- sorting a 10M-token document's
 * hashes was half of the plan pass.  Thread-safe (all state is local), so
 * documents of a batch run it in parallel. */
static folio_status_t distinct_stems(const folio_doc_t *doc, uint64_t **out, uint32_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    uint32_t n = doc->n_tokens;
    folio_u64map_t set;
    FOLIO_TRY(folio_u64map_init(&set, n / 8 < 64 ? 64 : (n / 8 > (1u << 20) ? (1u << 20) : n / 8)));
    for (uint32_t i = 0; i < n; i++) {
        if (!folio_u64map_slot(&set, folio_u64map_key(doc->stem_hashes[i]))) {
            folio_u64map_free(&set);
            return FOLIO_ERR_NOMEM;
        }
    }
    uint64_t *u = malloc((set.n ? set.n : 1) * sizeof *u);
    if (!u) { folio_u64map_free(&set); return FOLIO_ERR_NOMEM; }
    uint32_t k = 0;
    for (size_t i = 0; i < set.cap; i++)
        if (set.keys[i]) u[k++] = set.keys[i];
    folio_u64map_free(&set);
    *out = u;
    *n_out = k;
    return FOLIO_OK;
}

/* Adds sign to the df delta of each of a document's distinct terms. */
static folio_status_t df_add_terms(ingest_t *g, const uint64_t *keys, uint32_t n, int sign)
{
    for (uint32_t i = 0; i < n; i++) {
        int64_t *s = folio_u64map_slot(&g->terms, keys[i]);
        FOLIO_CHECK_ALLOC(s);
        *s += sign;
    }
    return FOLIO_OK;
}

/* The stored version of id leaves the store: subtract its terms. */
static folio_status_t df_remove_stored(ingest_t *g, const char *id)
{
    uint64_t *terms = NULL;
    uint32_t *tfs = NULL, n = 0;
    folio_status_t st = folio_store_doc_terms(g->store, id, &terms, &tfs, &n);
    if (st == FOLIO_ERR_NOT_FOUND) return FOLIO_OK;
    if (st != FOLIO_OK) return st;
    for (uint32_t i = 0; i < n; i++) {
        int64_t *s = folio_u64map_slot(&g->terms, folio_u64map_key(terms[i]));
        if (!s) { st = FOLIO_ERR_NOMEM; break; }
        *s -= 1;
    }
    free(terms);
    free(tfs);
    g->n_docs_delta -= 1;
    return st;
}

/* Counts (into *rejected: the commit thread has counters of its own) and
 * says why. */
static void reject(uint64_t *rejected, const folio_doc_t *doc, const char *reason)
{
    (*rejected)++;
    folio_log(FOLIO_LOG_WARN, "rejected %s%s%s: %s", doc->origin ? doc->origin : "(input)",
              doc->id && doc->origin && strcmp(doc->id, doc->origin) ? " id " : "",
              doc->id && doc->origin && strcmp(doc->id, doc->origin) ? doc->id : "", reason);
}

static folio_status_t plan_push(ingest_t *g, const folio_plan_entry_t *e)
{
    g->plan_n++;
    return folio_planlog_append(g->plan, e);
}

/* One document of a planning batch: read serially, analyzed in parallel,
 * planned serially in input order. */
typedef struct {
    folio_doc_t doc;
    folio_status_t rst;    /* the reader's verdict                          */
    folio_status_t ast;    /* the analysis's (when rst == OK)               */
    char reason[512];      /* the reader's reason for a rejection           */
    uint64_t *terms;       /* (n_terms) distinct stem hashes, as map keys   */
    uint32_t n_terms;
} plan_item_t;

/* Analysis of one read document: hash, tokens, terms (planning needs no
 * sentences), then only what planning keeps: the distinct terms. */
static void plan_analyze(plan_item_t *it)
{
    if (it->rst != FOLIO_OK) return;
    it->ast = folio_doc_analyze_terms(&it->doc);
    if (it->ast == FOLIO_OK) it->ast = distinct_stems(&it->doc, &it->terms, &it->n_terms);
    /* the token and hash arrays (24 B a token) are not needed any more */
    free(it->doc.tokens);
    free(it->doc.term_hashes);
    free(it->doc.stem_hashes);
    it->doc.tokens = NULL;
    it->doc.term_hashes = it->doc.stem_hashes = NULL;
}

static void plan_item_clear(plan_item_t *it)
{
    folio_doc_clear(&it->doc);
    free(it->terms);
    memset(it, 0, sizeof *it);
}

static folio_status_t plan_one(ingest_t *g, plan_item_t *it)
{
    folio_doc_t *doc = &it->doc;
    folio_plan_entry_t e;
    e.action = FOLIO_PLAN_SKIP;
    memset(e.hash, 0, sizeof e.hash);
    e.dup_of[0] = 0;
    g->c->seen++;
    if (it->rst != FOLIO_OK) {
        reject(&g->c->rejected, doc, it->reason[0] ? it->reason : folio_status_str(it->rst));
        return plan_push(g, &e);
    }
    g->c->bytes += doc->len;
    folio_status_t st = it->ast;
    if (st == FOLIO_ERR_EMPTY) {
        g->c->empty++;
        folio_log(FOLIO_LOG_INFO, "empty document %s: no words, nothing stored", doc->origin ? doc->origin : doc->id);
        return plan_push(g, &e);
    }
    if (st == FOLIO_ERR_NOMEM) return st;
    if (st != FOLIO_OK) {
        reject(&g->c->rejected, doc, folio_status_str(st));
        return plan_push(g, &e);
    }
    memcpy(e.hash, doc->hash, 16);
    /* The same id twice in one job: same content is a duplicate, other
     * content is rejected (the first occurrence wins, deterministically). */
    uint8_t prev_hash[16];
    bool found;
    FOLIO_TRY(folio_jobidx_find_id(g->jobidx, doc->id, prev_hash, &found));
    if (found) {
        if (!memcmp(prev_hash, doc->hash, 16)) {
            g->c->duplicate++;
        } else {
            char why[256];
            snprintf(why, sizeof why, "id '%.100s' appears twice in this job with different content; the first one is kept", doc->id);
            reject(&g->c->rejected, doc, why);
        }
        return plan_push(g, &e);
    }

    folio_doc_state_t state;
    st = folio_store_classify(g->store, doc->id, doc->hash, &state, e.dup_of, sizeof e.dup_of);
    if (st == FOLIO_ERR_ARG) {
        reject(&g->c->rejected, doc, "invalid document id (empty or longer than 500 bytes)");
        return plan_push(g, &e);
    }
    FOLIO_TRY(st);

    /* Every id settled by this job (stored as is, recorded as a duplicate,
     * or to be encoded) is indexed with its content, so that a later
     * occurrence with other content is rejected whether or not an earlier
     * run already stored the first: a re-run or a resumed run then keeps
     * the same version as an uninterrupted one. */
    if (state == FOLIO_DOC_SAME) {
        g->c->duplicate++;
        FOLIO_TRY(folio_jobidx_put(g->jobidx, doc->id, doc->hash, false));
        return plan_push(g, &e);
    }
    bool planned_dup = false;
    if (state != FOLIO_DOC_DUPLICATE)
        FOLIO_TRY(folio_jobidx_find_content(g->jobidx, doc->hash, e.dup_of, sizeof e.dup_of, &planned_dup));
    if (state == FOLIO_DOC_DUPLICATE || planned_dup) {
        e.action = FOLIO_PLAN_DUP; /* e.dup_of: the stored or planned holder */
        /* If this id currently holds other content, that version leaves. */
        FOLIO_TRY(df_remove_stored(g, doc->id));
        FOLIO_TRY(folio_jobidx_put(g->jobidx, doc->id, doc->hash, false));
        return plan_push(g, &e);
    }
    if (state == FOLIO_DOC_REPLACE) FOLIO_TRY(df_remove_stored(g, doc->id));
    FOLIO_TRY(df_add_terms(g, it->terms, it->n_terms, +1));
    g->n_docs_delta += 1;
    e.action = FOLIO_PLAN_ENCODE;
    FOLIO_TRY(plan_push(g, &e));
    FOLIO_TRY(folio_jobidx_put(g->jobidx, doc->id, doc->hash, true));
    g->planned_docs++;
    g->planned_bytes += doc->len;
    g->planned_tokens += doc->n_tokens;
    return FOLIO_OK;
}

/* Documents read per planning batch: their analysis runs in parallel on
 * rank 0 (the other ranks wait for the first round meanwhile, so rank 0
 * borrows their cores), the text of a batch bounds the pass's memory. */
enum { PLAN_BATCH_DOCS = 1024, PLAN_BATCH_BYTES = 16 << 20 };

/* Analyzes items[0..n) with `threads` threads: documents in parallel, a
 * large one alone with the threads inside it (term hashing runs in
 * parallel over its tokens).  Results do not depend on the thread count. */
static void analyze_batch(void *ctx, int64_t n, int threads, size_t (*len_of)(void *ctx, int64_t i),
                          void (*analyze)(void *ctx, int64_t i))
{
    enum { BIG = 4 << 20 }; /* bytes: analyzed alone, threads inside */
    int saved = omp_get_max_threads();
    omp_set_num_threads(threads); /* nested regions (term hashing) inherit it */
    for (int64_t i = 0; i < n; i++)
        if (len_of(ctx, i) >= BIG) analyze(ctx, i);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int64_t i = 0; i < n; i++)
        if (len_of(ctx, i) < BIG) analyze(ctx, i);
    omp_set_num_threads(saved);
}

static size_t plan_item_len(void *batch, int64_t i) { return ((plan_item_t *)batch)[i].doc.len; }
static void plan_item_analyze(void *batch, int64_t i) { plan_analyze(&((plan_item_t *)batch)[i]); }

static folio_status_t plan_pass(ingest_t *g, const char *const *inputs, int n_inputs)
{
    folio_reader_t *r = NULL;
    FOLIO_TRY(folio_reader_create(inputs, n_inputs, &r));
    plan_item_t *batch = calloc(PLAN_BATCH_DOCS, sizeof *batch);
    folio_status_t st = batch ? FOLIO_OK : FOLIO_ERR_NOMEM;
    bool eof = false;
    while (st == FOLIO_OK && !eof) {
        int64_t n = 0;
        size_t bytes = 0;
        while (n < PLAN_BATCH_DOCS && bytes < PLAN_BATCH_BYTES) {
            plan_item_t *it = &batch[n];
            it->rst = folio_reader_next(r, &it->doc, it->reason, sizeof it->reason);
            if (it->rst == FOLIO_EOF) { plan_item_clear(it); eof = true; break; }
            if (it->rst == FOLIO_ERR_NOMEM) { plan_item_clear(it); st = FOLIO_ERR_NOMEM; break; }
            bytes += it->doc.len;
            n++;
        }
        if (st == FOLIO_OK) analyze_batch(batch, n, g->analysis_threads, plan_item_len, plan_item_analyze);
        for (int64_t i = 0; i < n; i++) {
            if (st == FOLIO_OK) {
                st = plan_one(g, &batch[i]);
                progress(g, false, "planning", g->c->seen, 0, g->c->bytes, 0);
            }
            plan_item_clear(&batch[i]);
        }
    }
    free(batch);
    folio_reader_destroy(&r);
    return st;
}

/* IDF of every term of the planned documents, from the store's df and the
 * delta, in batches of one read transaction each; written over the delta in
 * g->terms (no second table of the vocabulary's size). */
static folio_status_t build_idf(ingest_t *g)
{
    folio_store_info_t info;
    FOLIO_TRY(folio_store_info(g->store, &info));
    g->n_docs_store = info.n_docs;
    int64_t n_docs = (int64_t)info.n_docs + g->n_docs_delta;
    if (n_docs < 1) n_docs = 1;
    enum { BATCH = 4096 };
    uint64_t keys[BATCH];
    uint32_t df[BATCH];
    size_t slot[BATCH];
    size_t nb = 0;
    folio_u64map_t *m = &g->terms;
    for (size_t i = 0; i <= m->cap; i++) {
        bool flush = i == m->cap;
        if (!flush && m->keys[i]) {
            keys[nb] = m->keys[i];
            slot[nb++] = i;
            flush = nb == BATCH;
        }
        if (!flush || nb == 0) continue;
        FOLIO_TRY(folio_store_df_lookup(g->store, keys, (uint32_t)nb, df));
        for (size_t j = 0; j < nb; j++) {
            int64_t d = (int64_t)df[j] + m->vals[slot[j]];
            if (d < 0) d = 0;
            float w = folio_idf((uint64_t)n_docs, (uint64_t)d);
            int32_t bits;
            memcpy(&bits, &w, 4);
            m->vals[slot[j]] = bits;
        }
        nb = 0;
    }
    return FOLIO_OK;
}

/* ------------------------------------------------------------ work + commit
 *
 * Rank 0's main thread reads, analyzes and computes round k+1 while a commit
 * thread (handoff.c) commits round k: the round's documents and results are
 * handed over whole, commits stay in input order, one write transaction per
 * round (each document with its done-marker), and the duplicate records of
 * the round follow it.  At most one round is in flight, so rank 0 holds two
 * rounds at most.  The commit thread is the only one using the store in
 * pass 2 (the main thread's store calls all belong to pass 1), and it owns
 * the counters of what it commits until it has ended. */

/* A round's text; its results (~70 bytes per token at d = 256) are held on
 * rank 0 until the round commits, so this bounds rank 0's memory. */
enum { ROUND_BYTES = 8 << 20, ROUND_DOCS_MAX = 4096 };

/* One round handed to the commit thread (all of it owned). */
typedef struct {
    int64_t n;
    folio_doc_t *docs;        /* (n) analyzed, moved out of the round's items */
    folio_status_t *est;      /* (n) encode status                            */
    folio_doc_results_t *res; /* (n) views into bufs[i] (when est[i] == OK)   */
    int *from;                /* (n) rank that computed it, -1 = all (split)  */
    char **bufs;              /* (n) result buffers                           */
    int64_t nd, cap_d;
    folio_doc_t *dups;        /* (nd) id, hash, origin (no text)              */
    char **dup_of;            /* (nd) the id holding the content              */
} commit_job_t;

static void commit_job_free(void *vjob)
{
    commit_job_t *j = vjob;
    if (!j) return;
    for (int64_t i = 0; i < j->n; i++) {
        folio_doc_clear(&j->docs[i]);
        free(j->bufs[i]);
    }
    for (int64_t k = 0; k < j->nd; k++) {
        folio_doc_clear(&j->dups[k]);
        free(j->dup_of[k]);
    }
    free(j->docs);
    free(j->est);
    free(j->res);
    free(j->from);
    free(j->bufs);
    free(j->dups);
    free(j->dup_of);
    free(j);
}

static commit_job_t *commit_job_new(int64_t cap_dups)
{
    commit_job_t *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->cap_d = cap_dups;
    j->dups = calloc((size_t)cap_dups, sizeof *j->dups);
    j->dup_of = calloc((size_t)cap_dups, sizeof *j->dup_of);
    if (!j->dups || !j->dup_of) {
        commit_job_free(j);
        return NULL;
    }
    return j;
}

/* The round's commit callback (main thread, inside folio_round_run): moves
 * the documents and result buffers into the pending job. */
static folio_status_t hand_round(void *vctx, folio_round_item_t *items, const folio_status_t *est,
                                 const folio_doc_results_t *res, const int *from_rank, char **bufs, int64_t n)
{
    commit_job_t *j = *(commit_job_t **)vctx;
    j->docs = calloc((size_t)n, sizeof *j->docs);
    j->est = calloc((size_t)n, sizeof *j->est);
    j->res = calloc((size_t)n, sizeof *j->res);
    j->from = calloc((size_t)n, sizeof *j->from);
    j->bufs = calloc((size_t)n, sizeof *j->bufs);
    FOLIO_CHECK_ALLOC(j->docs && j->est && j->res && j->from && j->bufs ? j : NULL);
    for (int64_t i = 0; i < n; i++) {
        j->docs[i] = items[i].doc;
        memset(&items[i].doc, 0, sizeof items[i].doc);
        j->est[i] = est[i];
        j->res[i] = res[i];
        j->from[i] = from_rank[i];
        j->bufs[i] = bufs[i];
        bufs[i] = NULL;
    }
    j->n = n;
    return FOLIO_OK;
}

/* The commit thread's state and counts (merged into the job's counters once
 * the thread has ended). */
typedef struct {
    ingest_t *g; /* store, cfg, planned_docs; progress state (pass 2: this thread only) */
    uint64_t committed, duplicate, rejected, tokens, bytes;
    double commit_seconds;
    long peak_anon_kb;
} commit_ctx_t;

static folio_status_t commit_one(commit_ctx_t *cc, const folio_doc_t *doc, folio_status_t est,
                                 const folio_doc_results_t *res, int from_rank, bool committed)
{
    ingest_t *g = cc->g;
    if (est == FOLIO_OK && !committed) {
        double tc = folio_now();
        est = folio_store_commit_doc(g->store, doc, res);
        cc->commit_seconds += folio_now() - tc;
    }
    if (est == FOLIO_OK) {
        cc->committed++;
        cc->tokens += doc->n_tokens;
        cc->bytes += doc->len;
        return FOLIO_OK;
    }
    if (est == FOLIO_ERR_ARG || est == FOLIO_ERR_TOO_LARGE) {
        reject(&cc->rejected, doc, folio_status_str(est));
        return FOLIO_OK;
    }
    if (from_rank < 0)
        folio_log(FOLIO_LOG_ERROR, "document %s (%s), split over all ranks: %s", doc->id,
                  doc->origin ? doc->origin : "", folio_status_str(est));
    else
        folio_log(FOLIO_LOG_ERROR, "rank %d failed on document %s (%s): %s", from_rank, doc->id,
                  doc->origin ? doc->origin : "", folio_status_str(est));
    return est;
}

/* A round's documents commit as one batch transaction (each document whole
 * with its done-marker, so atomic per document; one transaction per round
 * writes each shared index page once instead of once per document).  When
 * the batch is refused for one document's sake, they commit one by one so
 * only that one is rejected.  Then the round's duplicate records, whose
 * targets are committed by now.  Runs on the commit thread. */
static folio_status_t commit_job_run(void *vctx, void *vjob)
{
    commit_ctx_t *cc = vctx;
    commit_job_t *j = vjob;
    ingest_t *g = cc->g;
    folio_status_t st = FOLIO_OK;
    if (j->n > 0) {
        const folio_doc_t **docs = malloc((size_t)j->n * sizeof *docs);
        const folio_doc_results_t **rs = malloc((size_t)j->n * sizeof *rs);
        FOLIO_CHECK_ALLOC(docs && rs ? docs : NULL);
        uint32_t m = 0;
        for (int64_t i = 0; i < j->n; i++) {
            if (j->est[i] != FOLIO_OK) continue;
            docs[m] = &j->docs[i];
            rs[m++] = &j->res[i];
        }
        double tc = folio_now();
        folio_status_t bst = m ? folio_store_commit_docs(g->store, docs, rs, m) : FOLIO_OK;
        if (bst == FOLIO_OK && m) folio_store_writeback(g->store); /* the final sync has less to do */
        cc->commit_seconds += folio_now() - tc;
        if (bst != FOLIO_OK && bst != FOLIO_ERR_ARG && bst != FOLIO_ERR_CORRUPT && bst != FOLIO_ERR_TOO_LARGE) {
            folio_log(FOLIO_LOG_ERROR, "commit of %u documents (%s ... %s) failed: %s; the store keeps "
                      "every earlier round, run the same command again to resume", m, docs[0]->id,
                      docs[m - 1]->id, folio_status_str(bst));
            free(docs);
            free(rs);
            return bst;
        }
        free(docs);
        free(rs);
        for (int64_t i = 0; st == FOLIO_OK && i < j->n; i++)
            st = commit_one(cc, &j->docs[i], j->est[i], j->est[i] == FOLIO_OK ? &j->res[i] : NULL, j->from[i],
                            bst == FOLIO_OK);
    }
    for (int64_t k = 0; st == FOLIO_OK && k < j->nd; k++) {
        double tc = folio_now();
        folio_status_t dst = folio_store_commit_duplicate(g->store, j->dups[k].id, j->dups[k].hash, j->dup_of[k],
                                                          j->dups[k].origin);
        cc->commit_seconds += folio_now() - tc;
        if (dst == FOLIO_OK) cc->duplicate++;
        else if (dst == FOLIO_ERR_NOT_FOUND)
            reject(&cc->rejected, &j->dups[k], "duplicate of a document that could not be stored");
        else {
            folio_log(FOLIO_LOG_ERROR, "recording %s as a duplicate of %s failed: %s", j->dups[k].id, j->dup_of[k],
                      folio_status_str(dst));
            st = dst;
        }
    }
    progress(g, false, "ingest", cc->committed, g->planned_docs, cc->bytes, cc->tokens);
    long anon = folio_rss_anon_kb(); /* this round's results are still held */
    if (anon > cc->peak_anon_kb) cc->peak_anon_kb = anon;
    return st;
}

static void items_clear(folio_round_item_t *items, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        folio_doc_clear(&items[i].doc);
        free(items[i].weights);
        items[i].weights = NULL;
    }
}

/* What a document of the round being built needs besides its item. */
typedef struct {
    uint8_t want[16];      /* the content hash pass 1 planned             */
    folio_status_t st;     /* analysis (OK, or why it cannot be encoded)   */
} prep_item_t;

typedef struct {
    const ingest_t *g;
    folio_round_item_t *items;
    prep_item_t *prep;
} prep_batch_t;

static size_t prep_len(void *v, int64_t i) { return ((prep_batch_t *)v)->items[i].doc.len; }

/* Analysis and IDF weights of document i of a round (thread-safe: the
 * term table is only read). */
static void prep_analyze(void *v, int64_t i)
{
    const prep_batch_t *b = v;
    prep_item_t *p = &b->prep[i];
    folio_round_item_t *it = &b->items[i];
    p->st = folio_doc_analyze(&it->doc);
    if (p->st != FOLIO_OK) return;
    if (memcmp(it->doc.hash, p->want, 16)) { p->st = FOLIO_ERR_INTERNAL; return; }
    uint32_t n = it->doc.n_tokens;
    it->weights = malloc((size_t)n * sizeof(float) + 1);
    if (!it->weights) { p->st = FOLIO_ERR_NOMEM; return; }
    const folio_u64map_t *terms = &b->g->terms;
    for (uint32_t i = 0; i < n; i++) {
        int64_t *s = folio_u64map_find(terms, folio_u64map_key(it->doc.stem_hashes[i]));
        int32_t bits = s ? (int32_t)*s : 0;
        memcpy(&it->weights[i], &bits, 4);
        if (!s) it->weights[i] = 1.0f; /* unreachable: planned terms are all there */
    }
}

/* Analyzes the round's documents with `threads` threads (the node's when
 * the ranks wait for the round, see plan_pass), then drops, in order, those
 * whose input changed since pass 1. */
static folio_status_t prepare_round(ingest_t *g, folio_round_item_t *items, prep_item_t *prep, int64_t *n,
                                    int threads)
{
    prep_batch_t b = {g, items, prep};
    analyze_batch(&b, *n, threads, prep_len, prep_analyze);
    folio_status_t st = FOLIO_OK;
    int64_t k = 0;
    for (int64_t i = 0; i < *n; i++) {
        if (prep[i].st == FOLIO_ERR_NOMEM) st = FOLIO_ERR_NOMEM;
        if (prep[i].st != FOLIO_OK) {
            if (st == FOLIO_OK) reject(&g->c->rejected, &items[i].doc, "input changed during the job");
            folio_doc_clear(&items[i].doc);
            free(items[i].weights);
            items[i].weights = NULL;
            continue;
        }
        if (k != i) {
            items[k] = items[i];
            memset(&items[i], 0, sizeof items[i]);
        }
        k++;
    }
    *n = k;
    return st;
}

/* ------------------------------------------------------------ the feeder
 *
 * Rank 0's reading runs on a thread of its own, the feeder: it opens the
 * store and plans (pass 1) while the main thread sets up the backend with
 * the other ranks (CUDA contexts, NCCL: seconds on 4 GPUs), then streams
 * the inputs again (pass 2) into two round slots, each read and analyzed
 * whole, that the main thread computes in turn.  The feeder prepares
 * round k+1 while round k is computed, so reading and analysis leave the
 * critical path.  On a GPU it analyzes with the node's threads.  On the
 * CPU the encoders use the cores meanwhile, so it analyzes on its own
 * thread, and with the node's threads only when the main thread already
 * waits for the round: the reading's CPU time is then taken from an
 * encoder (rank 0's measured rate falls and the packing gives it less, see
 * round.c) instead of every rank waiting while rank 0 reads alone.
 * The feeder uses no MPI. */
typedef struct {
    folio_round_item_t *items; /* (round_docs)                             */
    prep_item_t *prep;         /* (round_docs)                             */
    int64_t n;                 /* documents to encode                      */
    commit_job_t *job;         /* duplicates read with them; results later */
    bool full, last;           /* ready for the main thread; the job's end */
    folio_status_t st;         /* the feeder's failure (with last)         */
} round_slot_t;

typedef struct {
    ingest_t *g;
    const char *const *inputs;
    int n_inputs;
    int64_t round_docs;
    bool ramp;      /* the first round smaller (fill_round)                 */
    round_slot_t slot[2];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int overlap;    /* how a round is analyzed while another is computed:
                       1 (GPU backend: the node's threads), 2 (CPU: one
                       thread unless the main thread waits), -1 before the
                       backend is known (nothing computes yet)             */
    int64_t want;   /* the round the main thread waits for, -1: none        */
    bool stop;      /* the main thread ended (done or failed): stop reading */
} feeder_t;

/* Reads the next round into sl: documents until it is full or the inputs
 * end, then their analysis. */
static void fill_round(feeder_t *f, folio_reader_t *r, folio_plan_entry_t *e, round_slot_t *sl, int64_t k)
{
    ingest_t *g = f->g;
    folio_status_t st = FOLIO_OK;
    size_t round_bytes = 0;
    int64_t ni = 0;
    sl->n = 0;
    sl->job = commit_job_new(f->round_docs);
    if (!sl->job) { sl->st = FOLIO_ERR_NOMEM; sl->last = true; return; }
    commit_job_t *job = sl->job;
    /* The first round is a quarter of the others: the commit thread, the
     * limit of a GPU ingest of many short documents, starts that much
     * sooner (a job's time is about the first round's compute plus every
     * commit), while later rounds keep the large commits that share the
     * index pages they touch. */
    int64_t cap_docs = k == 0 && f->ramp ? (f->round_docs + 3) / 4 : f->round_docs;
    size_t cap_bytes = k == 0 && f->ramp ? ROUND_BYTES / 4 : ROUND_BYTES;
    double t0 = folio_now();
    for (;;) {
        folio_doc_t doc = {0};
        char reason[512] = "";
        folio_status_t rst = folio_reader_next(r, &doc, reason, sizeof reason);
        if (rst == FOLIO_EOF) {
            sl->last = true;
            folio_doc_clear(&doc);
        } else if ((st = folio_planlog_next(g->plan, e)) != FOLIO_OK) {
            if (st == FOLIO_EOF) {
                folio_log(FOLIO_LOG_ERROR, "inputs changed during the job: more documents than planned");
                st = FOLIO_ERR_IO;
            }
            folio_doc_clear(&doc);
        } else if (e->action == FOLIO_PLAN_DUP) {
            /* Only the id, the hash and the origin are recorded: no
             * analysis, and the text is not held until the round ends. */
            uint8_t h[16] = {0};
            if (rst == FOLIO_OK) folio_hash128(doc.text, doc.len, h);
            if (rst != FOLIO_OK || memcmp(h, e->hash, 16)) {
                reject(&g->c->rejected, &doc, "input changed during the job");
            } else {
                memcpy(doc.hash, h, 16);
                free(doc.text);
                doc.text = NULL;
                doc.len = 0;
                job->dup_of[job->nd] = strdup(e->dup_of);
                if (!job->dup_of[job->nd]) st = FOLIO_ERR_NOMEM;
                else {
                    job->dups[job->nd++] = doc;
                    memset(&doc, 0, sizeof doc);
                }
            }
            folio_doc_clear(&doc);
        } else if (e->action == FOLIO_PLAN_ENCODE) {
            if (rst != FOLIO_OK) {
                reject(&g->c->rejected, &doc, "input changed during the job");
                folio_doc_clear(&doc);
            } else {
                /* analyzed with the rest of the round (prepare_round) */
                round_bytes += doc.len;
                sl->items[ni].doc = doc;
                memcpy(sl->prep[ni].want, e->hash, 16);
                ni++;
            }
        } else {
            folio_doc_clear(&doc);
        }
        if (st != FOLIO_OK || sl->last) break;
        if (ni == cap_docs || job->nd == job->cap_d || round_bytes >= cap_bytes) break;
    }
    if (st == FOLIO_OK && ni > 0) {
        pthread_mutex_lock(&f->mu);
        int threads = f->overlap == 2 && f->want != k ? 1 : g->analysis_threads;
        pthread_mutex_unlock(&f->mu);
        st = prepare_round(g, sl->items, sl->prep, &ni, threads);
    }
    sl->n = ni;
    g->c->prepare_seconds += folio_now() - t0;
    if (st != FOLIO_OK) {
        sl->st = st;
        sl->last = true;
    }
}

static void slot_clear(round_slot_t *sl)
{
    items_clear(sl->items, sl->n);
    sl->n = 0;
    commit_job_free(sl->job);
    sl->job = NULL;
}

/* Publishes a slot to the main thread. */
static void feeder_publish(feeder_t *f, round_slot_t *sl)
{
    pthread_mutex_lock(&f->mu);
    sl->full = true;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

static void *feeder_run(void *v)
{
    folio_thread_name("folio-feeder");
    feeder_t *f = v;
    ingest_t *g = f->g;
    /* pass 1 */
    folio_store_opts_t so = {0};
    so.buffered_writes = g->cfg->buffered_writes;
    folio_status_t st = folio_store_open(g->cfg->db, &so, &g->store);
    if (st == FOLIO_OK) st = folio_u64map_init(&g->terms, 1 << 16);
    if (st == FOLIO_OK) st = folio_planlog_create(g->cfg->db, &g->plan);
    if (st == FOLIO_OK) st = folio_jobidx_create(g->cfg->db, &g->jobidx);
    double tp = folio_now();
    if (st == FOLIO_OK) st = plan_pass(g, f->inputs, f->n_inputs);
    g->c->plan_seconds = folio_now() - tp;
    if (st == FOLIO_OK) progress(g, true, "planning", g->c->seen, 0, g->c->bytes, 0);
    folio_jobidx_destroy(&g->jobidx); /* pass 2 only needs the plan log */
    if (st == FOLIO_OK) st = build_idf(g);
    /* pass 2 */
    folio_reader_t *r = NULL;
    folio_plan_entry_t *e = malloc(sizeof *e);
    if (st == FOLIO_OK && !e) st = FOLIO_ERR_NOMEM;
    if (st == FOLIO_OK) st = folio_planlog_rewind(g->plan);
    if (st == FOLIO_OK) st = folio_reader_create(f->inputs, f->n_inputs, &r);
    if (st != FOLIO_OK) {
        f->slot[0].st = st;
        f->slot[0].last = true;
        feeder_publish(f, &f->slot[0]);
    }
    for (int64_t k = 0; st == FOLIO_OK; k++) {
        round_slot_t *sl = &f->slot[k % 2];
        pthread_mutex_lock(&f->mu);
        while (!f->stop && sl->full) pthread_cond_wait(&f->cv, &f->mu);
        bool stop = f->stop;
        pthread_mutex_unlock(&f->mu);
        if (stop) break;
        fill_round(f, r, e, sl, k);
        bool last = sl->last;
        feeder_publish(f, sl);
        if (last) break;
    }
    free(e);
    folio_reader_destroy(&r);
    return NULL;
}

/* Rank 0's main thread: computes the feeder's rounds in order and hands
 * each finished one to the commit thread. */
static folio_status_t work_pass(ingest_t *g, folio_round_ctx_t *rc, feeder_t *f)
{
    commit_ctx_t cc = {0};
    cc.g = g;
    commit_job_t *job = NULL; /* the round being computed */
    rc->commit = hand_round;
    rc->commit_ctx = &job;
    folio_handoff_t *committer = NULL;
    folio_status_t st = folio_handoff_create(commit_job_run, commit_job_free, &cc, &committer);
    pthread_mutex_lock(&f->mu);
    f->overlap = rc->gpu ? 1 : 2;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    for (int64_t k = 0; st == FOLIO_OK; k++) {
        round_slot_t *sl = &f->slot[k % 2];
        double tw = folio_now();
        pthread_mutex_lock(&f->mu);
        f->want = k;
        pthread_cond_broadcast(&f->cv);
        while (!sl->full) pthread_cond_wait(&f->cv, &f->mu);
        f->want = -1;
        pthread_mutex_unlock(&f->mu);
        g->c->prepare_wait_seconds += folio_now() - tw;
        bool last = sl->last;
        st = sl->st;
        job = sl->job;
        sl->job = NULL;
        if (st == FOLIO_OK && sl->n > 0) st = folio_round_run(rc, sl->items, sl->n); /* hand_round fills job */
        items_clear(sl->items, sl->n);
        sl->n = 0;
        /* Rounds held here: the one just computed, the one the feeder
         * prepares and the one the commit thread may still be on. */
        long anon = folio_rss_anon_kb();
        if (anon > g->c->peak_anon_kb) g->c->peak_anon_kb = anon;
        if (st == FOLIO_OK && job && (job->n > 0 || job->nd > 0)) {
            double tc = folio_now();
            st = folio_handoff_submit(committer, job); /* owns job from here */
            g->c->commit_wait_seconds += folio_now() - tc;
        } else {
            commit_job_free(job);
        }
        job = NULL;
        pthread_mutex_lock(&f->mu);
        sl->full = false;
        sl->last = false;
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
        if (last) break;
    }
    /* What was handed over is committed even when this thread failed: it is
     * whole, and in order. */
    double tw = folio_now();
    folio_status_t cst = committer ? folio_handoff_finish(committer) : FOLIO_OK;
    g->c->commit_wait_seconds += folio_now() - tw;
    folio_handoff_destroy(&committer);
    if (st == FOLIO_OK) st = cst;
    g->c->committed += cc.committed;
    g->c->duplicate += cc.duplicate;
    g->c->rejected += cc.rejected;
    g->c->tokens += cc.tokens;
    g->c->commit_seconds += cc.commit_seconds;
    if (cc.peak_anon_kb > g->c->peak_anon_kb) g->c->peak_anon_kb = cc.peak_anon_kb;
    progress(g, true, "ingest", cc.committed, g->planned_docs, cc.bytes, cc.tokens);
    return st;
}

static folio_status_t feeder_init(feeder_t *f, ingest_t *g, const char *const *inputs, int n_inputs,
                                  int threads, int P)
{
    memset(f, 0, sizeof *f);
    f->g = g;
    f->inputs = inputs;
    f->n_inputs = n_inputs;
    /* A round is also one commit transaction: 512 documents share the index
     * pages they touch (3x the commit throughput of 64-document rounds at
     * 256 MB), and several per thread balance the ranks; ROUND_BYTES keeps
     * long documents from making rounds large. */
    f->overlap = -1;
    f->want = -1;
    f->round_docs = (int64_t)16 * threads * P;
    if (f->round_docs < 512) f->round_docs = 512;
    if (f->round_docs > ROUND_DOCS_MAX) f->round_docs = ROUND_DOCS_MAX;
    /* Tests make many small rounds of a small corpus with it (the packing
     * by measured rates starts from the second round). */
    const char *rd = getenv("FOLIO_ROUND_DOCS");
    if (rd && atol(rd) > 0) f->round_docs = atol(rd) < ROUND_DOCS_MAX ? atol(rd) : ROUND_DOCS_MAX;
    f->ramp = !(rd && atol(rd) > 0); /* rounds of exactly that size */
    for (int k = 0; k < 2; k++) {
        f->slot[k].items = calloc((size_t)f->round_docs, sizeof *f->slot[k].items);
        f->slot[k].prep = calloc((size_t)f->round_docs, sizeof *f->slot[k].prep);
        if (!f->slot[k].items || !f->slot[k].prep) return FOLIO_ERR_NOMEM;
    }
    if (pthread_mutex_init(&f->mu, NULL) != 0) return FOLIO_ERR_NOMEM;
    if (pthread_cond_init(&f->cv, NULL) != 0) {
        pthread_mutex_destroy(&f->mu);
        return FOLIO_ERR_NOMEM;
    }
    return FOLIO_OK;
}

/* Stops the feeder (if it still runs), joins it and frees the slots. */
static void feeder_end(feeder_t *f, pthread_t *thread)
{
    if (thread) {
        pthread_mutex_lock(&f->mu);
        f->stop = true;
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
        pthread_join(*thread, NULL);
        pthread_mutex_destroy(&f->mu);
        pthread_cond_destroy(&f->cv);
    }
    for (int k = 0; k < 2; k++) {
        if (f->slot[k].items) slot_clear(&f->slot[k]);
        free(f->slot[k].items);
        free(f->slot[k].prep);
    }
}

/* ------------------------------------------------------------ entry */

static void ingest_free(ingest_t *g)
{
    folio_planlog_destroy(&g->plan);
    folio_jobidx_destroy(&g->jobidx);
    folio_u64map_free(&g->terms);
}

static void round_ctx_free(folio_round_ctx_t *rc)
{
    for (int t = 0; rc->thread_workers && t < rc->doc_threads; t++) folio_worker_destroy(&rc->thread_workers[t]);
    free(rc->thread_workers);
    rc->thread_workers = NULL;
    folio_worker_destroy(&rc->worker);
    folio_nccl_destroy(&rc->nccl);
}

/* Ranks on this node and this rank's index among them: threads per rank
 * when not given (the node's cores shared by its ranks, so -np 2 on a
 * 2-core machine does not oversubscribe) and the GPU a rank drives. */
static void node_share(MPI_Comm comm, int *threads, int *local_rank, int *local_ranks)
{
    MPI_Comm node;
    int local = 1;
    *local_rank = 0;
    if (MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_size(node, &local);
        MPI_Comm_rank(node, local_rank);
        MPI_Comm_free(&node);
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int t = (int)(cores > 0 ? cores : 1) / (local > 0 ? local : 1);
    *threads = t > 0 ? t : 1;
    *local_ranks = local > 0 ? local : 1;
}

folio_status_t folio_ingest_run(const folio_ingest_cfg_t *cfg, const char *const *inputs,
                                int n_inputs, folio_ingest_counts_t *counts)
{
    memset(counts, 0, sizeof *counts);
    double t0 = folio_now();
    int rank = 0;
    FOLIO_CHECK_MPI(MPI_Comm_rank(cfg->comm, &rank));
    folio_worker_cfg_t wc = {0};
    char err[256];
    if (folio_pattern_parse(cfg->pattern, &wc.pattern, err, sizeof err) != FOLIO_OK) {
        if (rank == 0) folio_log(FOLIO_LOG_ERROR, "--pattern '%s': %s", cfg->pattern ? cfg->pattern : "", err);
        return FOLIO_ERR_USAGE;
    }
    wc.backend = cfg->backend;
    int def_threads, local_rank, local_ranks;
    node_share(cfg->comm, &def_threads, &local_rank, &local_ranks);
    wc.threads = cfg->threads > 0 ? cfg->threads : def_threads;
    wc.device = local_rank;
    wc.announce = rank == 0;
    wc.long_docs = true; /* the rank's own worker; thread workers take short ones */
    folio_round_ctx_t rc = {0};
    rc.comm = cfg->comm;
    rc.threads = wc.threads;
    /* Every OpenMP region of this rank (embedding and pooling too, not only
     * the kernels that take a thread count) uses the rank's share of the
     * cores: idle OpenMP threads spin, and the spinning threads of
     * oversubscribed ranks steal the cores the working ones need. */
    omp_set_num_threads(wc.threads);

    ingest_t g = {0};
    g.cfg = cfg;
    g.c = counts;
    g.t0 = t0;
    /* Rank 0 reads and analyzes while the other ranks wait (for the first
     * round, or for the next one: rounds are synchronous), so it borrows
     * the threads of its node's ranks for that. */
    g.analysis_threads = wc.threads * local_ranks;
    int P = 1;
    MPI_Comm_size(cfg->comm, &P);
    feeder_t feed;
    pthread_t feeder;
    bool feeding = false;
    folio_status_t st = FOLIO_OK;
    if (rank == 0) {
        /* plan while the backend is set up (see feeder_run) */
        st = feeder_init(&feed, &g, inputs, n_inputs, wc.threads, P);
        if (st == FOLIO_OK && pthread_create(&feeder, NULL, feeder_run, &feed) == 0) feeding = true;
        else if (st == FOLIO_OK) st = FOLIO_ERR_NOMEM;
    }

    double ts0 = folio_now(), ts1, ts3;
    if (st == FOLIO_OK) st = folio_worker_create(&wc, &rc.worker);
    ts1 = folio_now();
    /* All ranks on the same backend: a document split over ranks is
     * computed by all of them together.  A CUDA failure here is before any
     * result was committed, so auto falls back to the CPU everywhere. */
    int on_gpu = st == FOLIO_OK && folio_worker_on_gpu(rc.worker), all_gpu = 0, ok = st == FOLIO_OK, all_ok = 0;
    int mst = MPI_Allreduce(&on_gpu, &all_gpu, 1, MPI_INT, MPI_MIN, cfg->comm);
    if (mst == MPI_SUCCESS) mst = MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, cfg->comm);
    if (mst != MPI_SUCCESS) {
        st = FOLIO_ERR_MPI;
    } else if (!all_ok) {
        if (st == FOLIO_OK) st = FOLIO_ERR_UNSUPPORTED;
    } else if (on_gpu && !all_gpu) {
        folio_worker_destroy(&rc.worker);
        if (cfg->backend == FOLIO_BACKEND_CUDA) {
            folio_log(FOLIO_LOG_ERROR, "--backend cuda: not every rank has a usable GPU");
            st = FOLIO_ERR_NO_DEVICE;
        } else {
            wc.backend = FOLIO_BACKEND_CPU;
            st = folio_worker_create(&wc, &rc.worker);
            if (rank == 0) folio_log(FOLIO_LOG_INFO, "backend auto: not every rank has a GPU, using the CPU");
        }
    }
    rc.gpu = all_gpu != 0;
    /* the NCCL communicator is made at the first split document (round.c) */
    rc.device = wc.device;
    /* Per-thread workers for short documents, on the rank's backend: on a
     * GPU each has its own stream, so documents overlap on the device. */
    wc.backend = rc.gpu ? FOLIO_BACKEND_CUDA : FOLIO_BACKEND_CPU;
    wc.announce = false;
    wc.long_docs = false;
    rc.doc_threads = rc.gpu && wc.threads > FOLIO_ROUND_GPU_STREAMS ? FOLIO_ROUND_GPU_STREAMS : wc.threads;
    if (st == FOLIO_OK) {
        rc.thread_workers = calloc((size_t)rc.doc_threads, sizeof *rc.thread_workers);
        if (!rc.thread_workers) st = FOLIO_ERR_NOMEM;
    }
    ts3 = folio_now();
    for (int t = 0; st == FOLIO_OK && t < rc.doc_threads; t++) {
        folio_worker_cfg_t one = wc;
        one.threads = 1;
        st = folio_worker_create(&one, &rc.thread_workers[t]);
    }
    if (getenv("FOLIO_PROFILE"))
        folio_log(FOLIO_LOG_INFO, "profile set-up: worker %.3fs, agreement %.3fs, %d thread workers %.3fs",
                  ts1 - ts0, ts3 - ts1, rc.doc_threads, folio_now() - ts3);
    /* Rounds only if every rank is ready (else every rank returns here and
     * rank 0 must not start a round nobody follows). */
    int ready = st == FOLIO_OK, all_ready = 0;
    if (MPI_Allreduce(&ready, &all_ready, 1, MPI_INT, MPI_MIN, cfg->comm) != MPI_SUCCESS) all_ready = 0;
    if (st == FOLIO_OK && !all_ready) st = FOLIO_ERR_MPI; /* another rank failed and said why */
    counts->setup_seconds = folio_now() - t0;

    if (rank != 0) {
        /* Workers follow rank 0's rounds until it ends the job. */
        while (st == FOLIO_OK) st = folio_round_run(&rc, NULL, 0);
        if (st == FOLIO_EOF) st = FOLIO_OK;
        round_ctx_free(&rc);
        return st;
    }

    /* The ranks' rates, for the rounds' packing (rank 0 decides it). */
    folio_balance_t balance = {0};
    if (st == FOLIO_OK && P > 1 && (st = folio_balance_init(&balance, P)) == FOLIO_OK) {
        rc.balance = &balance;
        /* On the CPU rank 0 gives the end of its share away to ranks that
         * are done (round.c): packed as if a little faster, it is rather
         * the one that gives than the one waiting.  FOLIO_ROUND_RANK0_BIAS
         * sets it (tests make rank 0 give most of every round away). */
        const char *bias = getenv("FOLIO_ROUND_RANK0_BIAS");
        if (!rc.gpu) balance.rank0_bias = bias && atof(bias) > 0 ? atof(bias) : FOLIO_ROUND_RANK0_BIAS;
    }
    rc.profile = getenv("FOLIO_PROFILE") != NULL;
    if (st == FOLIO_OK) st = work_pass(&g, &rc, &feed);
    feeder_end(&feed, feeding ? &feeder : NULL);
    /* End the job for the other ranks (a failure inside a round is ended by
     * the caller's MPI_Abort instead: ranks may be inside a collective). */
    if (all_ready) {
        folio_status_t est = folio_round_run(&rc, NULL, -1);
        if (st == FOLIO_OK && est != FOLIO_EOF) st = est;
    }
    double tf = folio_now();
    if (g.store) {
        folio_store_info_t si;
        if (folio_store_info(g.store, &si) == FOLIO_OK) {
            counts->map_growths = si.map_growths;
            counts->txn_reruns = si.txn_reruns;
            if (rc.profile)
                folio_log(FOLIO_LOG_INFO, "profile commit: prepare %.3fs, values %.3fs, postings+df %.3fs, "
                          "LMDB commit %.3fs (the rest of the commit thread's %.3fs: the map's growth, the "
                          "duplicates' records, waking the writeback)", si.commit_prepare_seconds,
                          si.commit_values_seconds, si.commit_postings_seconds, si.commit_txn_seconds,
                          counts->commit_seconds);
        }
        folio_status_t cst = folio_store_sync(g.store);
        if (st == FOLIO_OK) st = cst;
    }
    folio_store_close(&g.store);
    ingest_free(&g);
    round_ctx_free(&rc);
    counts->seconds = folio_now() - t0;
    counts->finish_seconds = folio_now() - tf;
    counts->compute_seconds = rc.compute_seconds;
    counts->nccl_seconds = rc.nccl_seconds;
    counts->exchange_seconds = rc.exchange_seconds;
    counts->results_wait_seconds = rc.results_wait_seconds;
    counts->ranks_idle_seconds = rc.ranks_idle_seconds;
    counts->rank0_tokens = rc.whole_tokens;
    counts->donated_docs = rc.donated_docs;
    counts->donated_tokens = rc.donated_tokens;
    folio_balance_free(&balance);
    return st;
}
