/* jobs/batch.c — `folio summarize --all` as an MPI batch job.
 *
 * Every rank opens the store (rank 0 read-write: it is the single writer;
 * the others read-only), lists the documents in id order from one snapshot,
 * and summarizes documents i with i % size == rank.  The JSON summaries are
 * gathered to rank 0 (MPI_Gatherv of lengths then bytes), which writes them
 * with folio_store_put_summary in id order and optionally to JSONL.  The
 * summary of a document depends only on the document, so -np 1 and -np N
 * give identical output. */
#include <stdlib.h>
#include <string.h>

#include "jobs.h"
#include "jobs_internal.h"

typedef struct { uint32_t *num; size_t n, cap; } numlist_t;

static int collect_num(const folio_stored_doc_t *d, void *ctx)
{
    numlist_t *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 256;
        uint32_t *p = realloc(l->num, cap * sizeof *p);
        if (!p) return 1; /* stops; caught by the count check below */
        l->num = p;
        l->cap = cap;
    }
    l->num[l->n++] = d->docnum;
    return 0;
}

#define MPI_TRY(call)                                                                    \
    do {                                                                                 \
        int mpi_rc_ = (call);                                                            \
        FOLIO_CHECK_GENERIC(mpi_rc_ == MPI_SUCCESS, FOLIO_ERR_MPI, "MPI: %s failed", #call); \
    } while (0)

folio_status_t folio_summarize_all(const char *db, const folio_summarize_cfg_t *cfg, MPI_Comm comm, FILE *jsonl,
                                   FILE *json_out, uint64_t *n_docs)
{
    int rank, size;
    MPI_TRY(MPI_Comm_rank(comm, &rank));
    MPI_TRY(MPI_Comm_size(comm, &size));
    *n_docs = 0;
    folio_store_t *s = NULL;
    folio_store_reader_t *r = NULL;
    folio_store_opts_t o = {.readonly = rank != 0};
    /* rank 0 opens (and, for a missing path, creates) first, so the others
     * find an initialized store */
    folio_status_t st = FOLIO_OK;
    if (rank == 0) {
        folio_store_opts_t ro = {.readonly = true};
        st = folio_store_open(db, &ro, &s); /* must exist: never create it here */
        folio_store_close(&s);
        if (st == FOLIO_OK) st = folio_store_open(db, &o, &s);
    }
    int ok0 = st == FOLIO_OK;
    MPI_TRY(MPI_Bcast(&ok0, 1, MPI_INT, 0, comm));
    if (!ok0) {
        if (rank == 0) folio_log(FOLIO_LOG_ERROR, "summarize --all: cannot open store %s: %s", db, folio_status_str(st));
        return rank == 0 ? st : FOLIO_ERR_STORE;
    }
    if (rank != 0) st = folio_store_open(db, &o, &s);
    numlist_t docs = {0};
    if (st == FOLIO_OK) st = folio_store_reader_open(s, &r);
    if (st == FOLIO_OK) st = folio_store_iter_docs(r, true, collect_num, &docs);
    /* all ranks must agree to go on */
    int ok = st == FOLIO_OK, all_ok = 0;
    MPI_TRY(MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm));
    if (!all_ok) {
        folio_store_reader_close(&r);
        folio_store_close(&s);
        free(docs.num);
        return st != FOLIO_OK ? st : FOLIO_ERR_MPI;
    }
    /* every rank saw the same snapshot unless a writer ran in between: use
     * rank 0's list */
    uint64_t nd = docs.n;
    MPI_TRY(MPI_Bcast(&nd, 1, MPI_UINT64_T, 0, comm));
    if (rank != 0) {
        uint32_t *p = realloc(docs.num, (nd ? nd : 1) * sizeof *p);
        if (!p) { st = FOLIO_ERR_NOMEM; nd = 0; }
        else docs.num = p;
    }
    if (nd) MPI_TRY(MPI_Bcast(docs.num, (int)nd, MPI_UINT32_T, 0, comm));

    /* this rank's share: one JSON text per document, concatenated */
    folio_buf_t mine = {0};
    uint64_t my_n = 0;
    for (uint64_t i = (uint64_t)rank; i < nd && st == FOLIO_OK; i += (uint64_t)size) my_n++;
    int *lens = calloc(my_n ? my_n : 1, sizeof *lens);
    if (!lens) st = FOLIO_ERR_NOMEM;
    uint64_t k = 0;
    for (uint64_t i = (uint64_t)rank; i < nd && st == FOLIO_OK; i += (uint64_t)size, k++) {
        folio_stored_doc_t d;
        folio_doc_view_t v;
        folio_doc_feats_t *f = NULL;
        folio_pick_t *p = NULL;
        uint32_t np = 0;
        size_t before = mine.len;
        st = folio_store_get_doc_by_num(r, docs.num[i], &d);
        if (st == FOLIO_OK) {
            folio_doc_view_from_stored(&d, &v);
            st = folio_doc_feats_create(&v, &f);
        }
        if (st == FOLIO_OK) st = folio_summarize(&v, f, cfg, &p, &np);
        if (st == FOLIO_OK) st = folio_summary_json(&v, p, np, &mine);
        if (st != FOLIO_OK) folio_log(FOLIO_LOG_ERROR, "summarize --all: document %u: %s", docs.num[i], folio_status_str(st));
        lens[k] = (int)(mine.len - before);
        free(p);
        folio_doc_feats_destroy(&f);
    }
    folio_store_reader_close(&r);
    ok = st == FOLIO_OK;
    MPI_TRY(MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm));
    if (!all_ok) {
        free(lens);
        folio_buf_free(&mine);
        folio_store_close(&s);
        free(docs.num);
        return st != FOLIO_OK ? st : FOLIO_ERR_MPI;
    }
    /* gather: counts per rank are known (round robin), then lengths, then bytes */
    int *cnt = NULL, *displ = NULL, *all_lens = NULL, *bytes = NULL, *bdispl = NULL;
    char *all = NULL;
    int my_bytes = (int)mine.len;
    if (rank == 0) {
        cnt = calloc((size_t)size, sizeof *cnt);
        displ = calloc((size_t)size, sizeof *displ);
        bytes = calloc((size_t)size, sizeof *bytes);
        bdispl = calloc((size_t)size, sizeof *bdispl);
        all_lens = calloc(nd ? nd : 1, sizeof *all_lens);
        if (!cnt || !displ || !bytes || !bdispl || !all_lens) st = FOLIO_ERR_NOMEM; /* fatal below */
        for (int q = 0; q < size && cnt; q++) {
            cnt[q] = (int)(nd > (uint64_t)q ? (nd - (uint64_t)q + (uint64_t)size - 1) / (uint64_t)size : 0);
            displ[q] = q ? displ[q - 1] + cnt[q - 1] : 0;
        }
    }
    MPI_TRY(MPI_Gatherv(lens, (int)my_n, MPI_INT, all_lens, cnt, displ, MPI_INT, 0, comm));
    MPI_TRY(MPI_Gather(&my_bytes, 1, MPI_INT, bytes, 1, MPI_INT, 0, comm));
    if (rank == 0) {
        size_t tot = 0;
        for (int q = 0; q < size; q++) { bdispl[q] = (int)tot; tot += (size_t)bytes[q]; }
        all = malloc(tot ? tot : 1);
        if (!all) st = FOLIO_ERR_NOMEM;
    }
    MPI_TRY(MPI_Gatherv(mine.data ? mine.data : "", my_bytes, MPI_CHAR, all, bytes, bdispl, MPI_CHAR, 0, comm));
    if (rank == 0 && st == FOLIO_OK) {
        /* rank q's j-th document is doc index q + j*size; walk in id order */
        size_t *off = calloc((size_t)size, sizeof *off);
        if (!off) st = FOLIO_ERR_NOMEM;
        for (uint64_t i = 0; i < nd && st == FOLIO_OK; i++) {
            int q = (int)(i % (uint64_t)size);
            uint64_t j = i / (uint64_t)size;
            int len = all_lens[displ[q] + (int)j];
            const char *js = all + bdispl[q] + off[q];
            off[q] += (size_t)len;
            /* the id is inside the JSON; fetch it from a fresh reader-free
             * path: parse the "doc" member */
            char err[128];
            folio_json_t *jv = NULL;
            st = folio_json_parse(js, (size_t)len, &jv, err, sizeof err);
            if (st != FOLIO_OK) { folio_log(FOLIO_LOG_ERROR, "summarize --all: bad summary JSON: %s", err); break; }
            const char *id = folio_json_get_str(jv, "doc", NULL);
            st = id ? folio_store_put_summary(s, id, js, (size_t)len) : FOLIO_ERR_INTERNAL;
            folio_json_free(&jv);
            if (st != FOLIO_OK) { folio_log(FOLIO_LOG_ERROR, "summarize --all: cannot store a summary: %s", folio_status_str(st)); break; }
            if (jsonl) { fwrite(js, 1, (size_t)len, jsonl); fputc('\n', jsonl); }
            if (json_out) { fwrite(js, 1, (size_t)len, json_out); fputc('\n', json_out); }
            (*n_docs)++;
        }
        free(off);
        if (st == FOLIO_OK) st = folio_store_sync(s);
    }
    free(cnt); free(displ); free(bytes); free(bdispl); free(all_lens); free(all);
    free(lens);
    folio_buf_free(&mine);
    folio_store_close(&s);
    free(docs.num);
    /* every rank returns rank 0's verdict */
    int code = (int)st;
    MPI_TRY(MPI_Bcast(&code, 1, MPI_INT, 0, comm));
    return (folio_status_t)code;
}
