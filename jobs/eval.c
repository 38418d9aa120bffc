/* jobs/eval.c — `folio eval summarize` and `folio eval qa` (design.md).
 *
 * Each data row is analyzed with shard's folio_doc_analyze and the job runs
 * on its document view (in memory), or — when the caller passes a store
 * reader — on the stored document of the same id (vectors and salience as
 * ingest computed them).  Scores: ROUGE F1 x 100 averaged over documents;
 * QA hit@k and MRR@10 x 100 averaged over questions. */
#include <stdlib.h>
#include <string.h>

#include "jobs.h"
#include "jobs_internal.h"

/* One JSONL row parsed into a document (id, title, text) + the JSON tree. */
typedef struct {
    folio_json_t *json;
    folio_doc_t doc;
} row_t;

static void row_clear(row_t *r)
{
    folio_json_free(&r->json);
    folio_doc_clear(&r->doc);
    memset(r, 0, sizeof *r);
}

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) { memcpy(p, s, n); p[n] = '\0'; }
    return p;
}

/* Reads the next non-empty line of f and fills r; FOLIO_EOF at the end. */
static folio_status_t row_next(FILE *f, const char *path, uint64_t *lineno, row_t *r, char **line, size_t *cap)
{
    for (;;) {
        ssize_t got = getline(line, cap, f);
        if (got < 0) return FOLIO_EOF;
        (*lineno)++;
        size_t n = (size_t)got;
        while (n && ((*line)[n - 1] == '\n' || (*line)[n - 1] == '\r')) n--;
        size_t i = 0;
        while (i < n && ((*line)[i] == ' ' || (*line)[i] == '\t')) i++;
        if (i == n) continue;
        char err[256];
        folio_status_t st = folio_json_parse(*line, n, &r->json, err, sizeof err);
        if (st != FOLIO_OK) {
            folio_log(FOLIO_LOG_ERROR, "%s:%llu: malformed JSON: %s", path, (unsigned long long)*lineno, err);
            return st;
        }
        size_t idl = 0, tl = 0, til = 0;
        const char *id = folio_json_get_str(r->json, "id", &idl);
        const char *text = folio_json_get_str(r->json, "text", &tl);
        const char *title = folio_json_get_str(r->json, "title", &til);
        if (!id || !text) {
            folio_log(FOLIO_LOG_ERROR, "%s:%llu: row needs string fields \"id\" and \"text\"", path,
                      (unsigned long long)*lineno);
            folio_json_free(&r->json);
            return FOLIO_ERR_PARSE;
        }
        r->doc.id = dup_n(id, idl);
        r->doc.text = dup_n(text, tl);
        r->doc.title = dup_n(title ? title : "", title ? til : 0);
        r->doc.len = tl;
        char origin[64];
        snprintf(origin, sizeof origin, ":%llu", (unsigned long long)*lineno);
        size_t pl = strlen(path);
        r->doc.origin = malloc(pl + strlen(origin) + 1);
        if (!r->doc.id || !r->doc.text || !r->doc.title || !r->doc.origin) return FOLIO_ERR_NOMEM;
        memcpy(r->doc.origin, path, pl);
        strcpy(r->doc.origin + pl, origin);
        return FOLIO_OK;
    }
}

/* Analyzes the row and gives its view: from the store when r_store has the
 * id, else from the in-memory analysis. */
static folio_status_t row_view(row_t *r, folio_store_t *s, folio_store_reader_t *rd, folio_stored_doc_t *sd,
                               folio_doc_view_t *v, bool *from_store)
{
    *from_store = false;
    if (rd && folio_store_get_doc(rd, r->doc.id, sd) == FOLIO_OK) {
        folio_doc_view_from_stored(sd, v);
        *from_store = true;
        return FOLIO_OK;
    }
    if (rd && s) { /* a duplicate row: its content is stored under another id */
        uint8_t h[16];
        folio_hash128(r->doc.text, r->doc.len, h);
        folio_doc_state_t state;
        char other[FOLIO_STORE_MAX_ID + 1];
        if (folio_store_classify(s, r->doc.id, h, &state, other, sizeof other) == FOLIO_OK &&
            (state == FOLIO_DOC_DUPLICATE || state == FOLIO_DOC_SAME) &&
            folio_store_get_doc(rd, state == FOLIO_DOC_SAME ? r->doc.id : other, sd) == FOLIO_OK &&
            sd->len == r->doc.len && memcmp(sd->text, r->doc.text, sd->len) == 0) {
            folio_doc_view_from_stored(sd, v);
            *from_store = true;
            return FOLIO_OK;
        }
    }
    folio_status_t st = folio_doc_analyze(&r->doc);
    if (st != FOLIO_OK) {
        folio_log(FOLIO_LOG_ERROR, "%s (%s): cannot analyze: %s", r->doc.id, r->doc.origin, folio_status_str(st));
        return st;
    }
    folio_doc_view_from_doc(&r->doc, v);
    return FOLIO_OK;
}

folio_status_t folio_eval_summarize(const char *data, folio_store_t *s, folio_store_reader_t *rd, const folio_summarize_cfg_t *cfg,
                                    uint32_t cut_words, FILE *details, folio_eval_sum_t *res)
{
    memset(res, 0, sizeof *res);
    FILE *f = fopen(data, "r");
    FOLIO_CHECK_GENERIC(f != NULL, FOLIO_ERR_IO, "eval summarize: cannot open %s: %m", data);
    char *line = NULL;
    size_t cap = 0;
    uint64_t lineno = 0;
    folio_status_t st = FOLIO_OK;
    double s1 = 0, s2 = 0, sl = 0;
    folio_buf_t sum = {0}, js = {0};
    for (;;) {
        row_t r = {0};
        st = row_next(f, data, &lineno, &r, &line, &cap);
        if (st == FOLIO_EOF) { st = FOLIO_OK; row_clear(&r); break; }
        if (st != FOLIO_OK) { row_clear(&r); break; }
        size_t refl = 0;
        const char *ref = folio_json_get_str(r.json, "summary", &refl);
        if (!ref) {
            folio_log(FOLIO_LOG_ERROR, "%s:%llu: summarization row without a string \"summary\"", data,
                      (unsigned long long)lineno);
            row_clear(&r);
            st = FOLIO_ERR_PARSE;
            break;
        }
        folio_stored_doc_t sd;
        folio_doc_view_t v;
        bool from_store;
        folio_doc_feats_t *feats = NULL;
        folio_pick_t *p = NULL;
        uint32_t np = 0;
        double t0 = folio_now();
        st = row_view(&r, s, rd, &sd, &v, &from_store);
        if (st == FOLIO_ERR_EMPTY) { /* an empty document: empty summary, scores 0 */
            folio_doc_view_from_doc(&r.doc, &v);
            v.n_sents = 0;
            st = FOLIO_OK;
        }
        if (st == FOLIO_OK) st = folio_doc_feats_create(&v, &feats);
        if (st == FOLIO_OK) st = folio_summarize(&v, feats, cfg, &p, &np);
        res->seconds_jobs += folio_now() - t0;
        if (st != FOLIO_OK) { folio_doc_feats_destroy(&feats); row_clear(&r); break; }
        sum.len = 0;
        if (sum.data) sum.data[0] = '\0';
        for (uint32_t i = 0; i < np && st == FOLIO_OK; i++) {
            /* one sentence per line (ROUGE-Lsum); internal newlines of a
             * sentence become spaces so each line is one sentence */
            if (i) st = folio_buf_append(&sum, "\n", 1);
            size_t b = sum.len;
            if (st == FOLIO_OK) st = folio_buf_append(&sum, v.text + p[i].start, p[i].end - p[i].start);
            for (size_t k = b; k < sum.len; k++) if (sum.data[k] == '\n' || sum.data[k] == '\r') sum.data[k] = ' ';
        }
        folio_rouge_t rs = {0};
        if (st == FOLIO_OK) {
            size_t cut = cut_words ? folio_rouge_cut_words(sum.data ? sum.data : "", sum.len, cut_words) : sum.len;
            st = folio_rouge_score(ref, refl, sum.data ? sum.data : "", cut, &rs);
        }
        if (st == FOLIO_OK && details) {
            js.len = 0;
            st = folio_buf_append(&js, "{\"id\":", 6);
            if (st == FOLIO_OK) st = jobs_buf_json_str(&js, r.doc.id, strlen(r.doc.id));
            if (st == FOLIO_OK) st = folio_buf_append(&js, ",\"summary\":", 11);
            if (st == FOLIO_OK) st = jobs_buf_json_str(&js, sum.data ? sum.data : "", sum.len);
            if (st == FOLIO_OK) st = folio_buf_printf(&js, ",\"rouge1\":%.4f,\"rouge2\":%.4f,\"rougeLsum\":%.4f}\n",
                                                      100 * rs.rouge1.f, 100 * rs.rouge2.f, 100 * rs.rougeLsum.f);
            if (st == FOLIO_OK) fwrite(js.data, 1, js.len, details);
        }
        s1 += rs.rouge1.f;
        s2 += rs.rouge2.f;
        sl += rs.rougeLsum.f;
        res->docs++;
        if (from_store) res->from_store++;
        free(p);
        folio_doc_feats_destroy(&feats);
        row_clear(&r);
        if (st != FOLIO_OK) break;
    }
    free(line);
    fclose(f);
    folio_buf_free(&sum);
    folio_buf_free(&js);
    if (res->docs) {
        res->rouge1 = 100 * s1 / (double)res->docs;
        res->rouge2 = 100 * s2 / (double)res->docs;
        res->rougeLsum = 100 * sl / (double)res->docs;
    }
    return st;
}

folio_status_t folio_eval_qa(const char *data, folio_store_t *s, folio_store_reader_t *rd, const folio_ask_cfg_t *cfg, uint32_t top_k,
                             FILE *details, folio_eval_qa_t *res)
{
    memset(res, 0, sizeof *res);
    FILE *f = fopen(data, "r");
    FOLIO_CHECK_GENERIC(f != NULL, FOLIO_ERR_IO, "eval qa: cannot open %s: %m", data);
    char *line = NULL;
    size_t cap = 0;
    uint64_t lineno = 0;
    folio_status_t st = FOLIO_OK;
    double h1 = 0, h5 = 0, h10 = 0, mrr = 0;
    folio_buf_t js = {0};
    uint32_t k_eval = top_k > 10 ? top_k : 10; /* rank enough for hit@10 / MRR@10 */
    for (;;) {
        row_t r = {0};
        st = row_next(f, data, &lineno, &r, &line, &cap);
        if (st == FOLIO_EOF) { st = FOLIO_OK; row_clear(&r); break; }
        if (st != FOLIO_OK) { row_clear(&r); break; }
        const folio_json_t *qs = folio_json_get(r.json, "questions");
        if (!qs || qs->type != FOLIO_JSON_ARR) {
            folio_log(FOLIO_LOG_ERROR, "%s:%llu: QA row without a \"questions\" array", data,
                      (unsigned long long)lineno);
            row_clear(&r);
            st = FOLIO_ERR_PARSE;
            break;
        }
        folio_stored_doc_t sd;
        folio_doc_view_t v;
        bool from_store;
        folio_doc_feats_t *feats = NULL;
        double t0 = folio_now();
        st = row_view(&r, s, rd, &sd, &v, &from_store);
        if (st == FOLIO_OK) st = folio_doc_feats_create(&v, &feats);
        res->seconds_jobs += folio_now() - t0;
        if (st != FOLIO_OK) { row_clear(&r); break; }
        if (from_store) res->from_store++;
        res->docs++;
        for (size_t qi = 0; qi < qs->n && st == FOLIO_OK; qi++) {
            const folio_json_t *q = qs->items[qi];
            size_t ql = 0;
            const char *qt = folio_json_get_str(q, "question", &ql);
            const folio_json_t *ans = folio_json_get(q, "answers");
            if (!qt || !ans || ans->type != FOLIO_JSON_ARR) {
                folio_log(FOLIO_LOG_ERROR, "%s:%llu: question %zu needs \"question\" and \"answers\"", data,
                          (unsigned long long)lineno, qi);
                st = FOLIO_ERR_PARSE;
                break;
            }
            const char **golds = calloc(ans->n ? ans->n : 1, sizeof *golds);
            size_t *gl = calloc(ans->n ? ans->n : 1, sizeof *gl);
            uint32_t ng = 0;
            if (!golds || !gl) { free(golds); free(gl); st = FOLIO_ERR_NOMEM; break; }
            for (size_t a = 0; a < ans->n; a++)
                if (ans->items[a]->type == FOLIO_JSON_STR && ans->items[a]->len) {
                    golds[ng] = ans->items[a]->str;
                    gl[ng++] = ans->items[a]->len;
                }
            folio_query_t *query = NULL;
            folio_answer_t *hits = NULL;
            uint32_t nh = 0;
            double t1 = folio_now();
            st = folio_query_create(qt, ql, &query);
            if (st == FOLIO_OK && from_store && v.d && cfg->method == FOLIO_ASK_FOLIO)
                st = folio_query_encode(query, s, v.d);
            if (st == FOLIO_OK) st = folio_ask_doc(&v, feats, query, cfg, k_eval, &hits, &nh);
            res->seconds_jobs += folio_now() - t1;
            if (st == FOLIO_OK) {
                uint32_t rank = folio_qa_first_hit(v.text, v.len, golds, gl, ng, hits, nh);
                h1 += rank >= 1 && rank <= 1;
                h5 += rank >= 1 && rank <= 5;
                h10 += rank >= 1 && rank <= 10;
                mrr += rank >= 1 && rank <= 10 ? 1.0 / rank : 0.0;
                res->questions++;
                if (details) {
                    js.len = 0;
                    char qid[64];
                    snprintf(qid, sizeof qid, "#%zu", qi);
                    st = folio_buf_append(&js, "{\"id\":", 6);
                    folio_buf_t idb = {0};
                    if (st == FOLIO_OK) st = folio_buf_printf(&idb, "%s%s", r.doc.id, qid);
                    if (st == FOLIO_OK) st = jobs_buf_json_str(&js, idb.data, idb.len);
                    folio_buf_free(&idb);
                    if (st == FOLIO_OK) st = folio_buf_append(&js, ",\"question\":", 12);
                    if (st == FOLIO_OK) st = jobs_buf_json_str(&js, qt, ql);
                    if (st == FOLIO_OK) st = folio_buf_append(&js, ",\"answers\":[", 12);
                    uint32_t shown = nh < top_k ? nh : top_k;
                    for (uint32_t i = 0; i < shown && st == FOLIO_OK; i++)
                        st = folio_buf_printf(&js, "%s{\"start\":%u,\"end\":%u}", i ? "," : "", hits[i].start,
                                              hits[i].end);
                    if (st == FOLIO_OK) st = folio_buf_printf(&js, "],\"hit_rank\":%u}\n", rank);
                    if (st == FOLIO_OK) fwrite(js.data, 1, js.len, details);
                }
            }
            free(hits);
            folio_query_destroy(&query);
            free(golds);
            free(gl);
        }
        folio_doc_feats_destroy(&feats);
        row_clear(&r);
        if (st != FOLIO_OK) break;
    }
    free(line);
    fclose(f);
    folio_buf_free(&js);
    if (res->questions) {
        double q = (double)res->questions;
        res->hit1 = 100 * h1 / q;
        res->hit5 = 100 * h5 / q;
        res->hit10 = 100 * h10 / q;
        res->mrr10 = 100 * mrr / q;
    }
    return st;
}
