#define _GNU_SOURCE /* memmem */
/* jobs/ask.c — question answering: sentence retrieval within a document and
 * across a store, and the QA hit rule of design.md.
 *
 * Methods (sentences of the document are the passages):
 *  bm25   plain Okapi BM25 over sentences: idf = ln(1 + (N - n_t + 0.5) /
 *         (n_t + 0.5)) with N = sentences, n_t = sentences containing t;
 *         tf saturation k1 = 1.2, length normalization b = 0.75 over the
 *         sentence's token count.  Stopwords of the question are dropped
 *         (all kept when the question has nothing else).
 *  folio  (default) reciprocal-rank fusion (1 / (rrf_k + rank)) of:
 *         1. lexical: the same formula with k1_fused = 0, i.e. the sum of the
 *            idf of the question terms the sentence contains (sentences are
 *            short: tf saturation and length penalties only added noise on
 *            the dev questions), plus w_section x the BM25 of its section's
 *            title, plus the match of a preceding short label line
 *            ("Recommendation diversity."), plus a bonus for sentences with
 *            numbers when the question asks a quantity;
 *         2. the TF-IDF cosine of question and sentence (w_dense);
 *         3. context: the lexical score plus w_context x the previous and
 *            w_context_next x the next sentence's (the answer often sits
 *            next to the sentence that repeats the question's words);
 *         4. dense: the cosine of the encoded question (folio_query_encode)
 *            to the stored contextual sentence vector (w_vec, 0 by default:
 *            it lowered hit@5 on the dev questions, see bench/RESULTS.md).
 *         Headings and label lines are never answers; equal scores rank the
 *         earlier sentence first; a sentence whose text repeats a better one
 *         is dropped.
 * Answers are whole sentences: byte offsets [start, end) of the sentence in
 * the original text. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jobs.h"
#include "jobs_internal.h"
#include "../attn/attn.h"
#include "../attn/attn.h" /* FOLIO_EMBED_SEED, folio_idf: encode exactly as ingest does */

struct folio_query {
    uint64_t *terms;   /* distinct index terms (stem hashes) */
    uint32_t *qtf;     /* their counts in the question        */
    uint32_t n;
    float *vec;        /* (d) or NULL                         */
    uint32_t d;
    bool numeric;      /* asks for a quantity ("how many ...")  */
    char *text;        /* the question (for folio_query_encode) */
    size_t len;
};

/* "how many / how much / how large / how big / how long / what percentage /
 * what is the size / number of": the answer is probably a number. */
static bool asks_quantity(const char *q, size_t len)
{
    char low[256];
    size_t n = len < sizeof low - 1 ? len : sizeof low - 1;
    for (size_t i = 0; i < n; i++) low[i] = (char)(q[i] >= 'A' && q[i] <= 'Z' ? q[i] - 'A' + 'a' : q[i]);
    low[n] = '\0';
    static const char *const cues[] = {"how many", "how much", "how large", "how big", "how long", "how small",
                                       "what percentage", "what is the size", "number of", "how often"};
    for (size_t i = 0; i < sizeof cues / sizeof cues[0]; i++)
        if (strstr(low, cues[i])) return true;
    return false;
}

void folio_ask_cfg_default(folio_ask_cfg_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->method = FOLIO_ASK_FOLIO;
    cfg->k1 = 1.2f;
    cfg->b = 0.75f;
    cfg->w_dense = 1.0f;
    cfg->w_context = 0.25f;
    cfg->w_context_next = 0.25f;
    cfg->rrf_k = 60;
    cfg->w_section = 0.3f;
    cfg->w_type = 0.3f;
    cfg->w_ctx_rank = 1.0f;
    cfg->w_par = 0.0f;
    cfg->w_vec = 0.0f;
    cfg->w_tie = 0.0f;
    cfg->w_doc = 0.3f;
    cfg->k1_fused = 0.0f;
}

folio_status_t folio_query_create(const char *question, size_t len, folio_query_t **out)
{
    *out = NULL;
    FOLIO_CHECK_GENERIC(len <= FOLIO_QUERY_MAX_BYTES, FOLIO_ERR_TOO_LARGE,
                        "question of %zu bytes is too long (at most %d)", len, FOLIO_QUERY_MAX_BYTES);
    folio_query_t *q = calloc(1, sizeof *q);
    FOLIO_CHECK_ALLOC(q);
    folio_span_t *toks = NULL;
    uint32_t nt = 0;
    folio_status_t st = folio_tokenize(question, len, &toks, &nt);
    if (st != FOLIO_OK) { free(q); return st; }
    q->terms = malloc((nt ? nt : 1) * sizeof *q->terms);
    q->qtf = malloc((nt ? nt : 1) * sizeof *q->qtf);
    uint8_t *stop = calloc(nt ? nt : 1, 1);
    if (!q->terms || !q->qtf || !stop) { free(stop); free(toks); folio_query_destroy(&q); return FOLIO_ERR_NOMEM; }
    uint32_t n_content = 0;
    for (uint32_t i = 0; i < nt; i++) {
        char norm[64];
        size_t n = folio_token_norm(question, toks[i], norm, sizeof norm);
        stop[i] = folio_is_stopword(norm, n);
        n_content += !stop[i];
    }
    jobs_termmap_t seen;
    if (jobs_termmap_init(&seen, nt) != FOLIO_OK) { free(stop); free(toks); folio_query_destroy(&q); return FOLIO_ERR_NOMEM; }
    for (uint32_t i = 0; i < nt; i++) {
        if (n_content && stop[i]) continue;
        uint64_t h = folio_stem_hash(question, toks[i]);
        uint32_t j = jobs_termmap_add(&seen, h); /* ids are dense, in first-seen order */
        if (j == q->n) { q->terms[q->n] = h; q->qtf[q->n++] = 0; }
        q->qtf[j]++;
    }
    jobs_termmap_free(&seen);
    free(stop);
    free(toks);
    q->numeric = asks_quantity(question, len);
    q->text = malloc(len + 1);
    if (!q->text) { folio_query_destroy(&q); return FOLIO_ERR_NOMEM; }
    memcpy(q->text, question, len);
    q->text[len] = '\0';
    q->len = len;
    *out = q;
    return FOLIO_OK;
}

void folio_query_destroy(folio_query_t **pq)
{
    if (!pq || !*pq) return;
    free((*pq)->terms);
    free((*pq)->qtf);
    free((*pq)->vec);
    free((*pq)->text);
    free(*pq);
    *pq = NULL;
}

folio_status_t folio_query_encode(folio_query_t *q, folio_store_t *s, uint32_t d)
{
    if (d == 0 || (q->vec && q->d == d)) return FOLIO_OK;
    const char *question = q->text;
    size_t len = q->len;
    folio_span_t *toks = NULL;
    uint32_t nt = 0;
    FOLIO_TRY(folio_tokenize(question, len, &toks, &nt));
    if (nt == 0) { free(toks); return FOLIO_OK; }
    folio_status_t st = FOLIO_OK;
    uint64_t *stems = malloc(nt * sizeof *stems);
    uint32_t *df = malloc(nt * sizeof *df);
    float *w = malloc(nt * sizeof *w), *X = malloc((size_t)nt * d * sizeof *X), *vec = malloc(d * sizeof *vec);
    folio_store_info_t info;
    if (!stems || !df || !w || !X || !vec) st = FOLIO_ERR_NOMEM;
    for (uint32_t i = 0; st == FOLIO_OK && i < nt; i++) stems[i] = folio_stem_hash(question, toks[i]);
    if (st == FOLIO_OK) st = folio_store_info(s, &info);
    if (st == FOLIO_OK) st = folio_store_df_lookup(s, stems, nt, df);
    /* the weights ingest gives document tokens: IDF over the store's docs */
    for (uint32_t i = 0; st == FOLIO_OK && i < nt; i++) w[i] = folio_idf(info.n_docs ? info.n_docs : 1, df[i]);
    if (st == FOLIO_OK) st = folio_embed(question, toks, w, nt, d, FOLIO_EMBED_SEED, X);
    uint32_t b = 0, e = nt;
    if (st == FOLIO_OK) st = folio_pool_ranges(X, nt, d, &b, &e, 1, vec);
    if (st == FOLIO_OK) st = folio_query_set_vec(q, vec, d);
    free(stems); free(df); free(w); free(X); free(vec); free(toks);
    return st;
}

uint32_t folio_query_n_terms(const folio_query_t *q) { return q->n; }

folio_status_t folio_query_set_vec(folio_query_t *q, const float *vec, uint32_t d)
{
    float *v = malloc((d ? d : 1) * sizeof *v);
    FOLIO_CHECK_ALLOC(v);
    memcpy(v, vec, d * sizeof *v);
    free(q->vec);
    q->vec = v;
    q->d = d;
    return FOLIO_OK;
}

/* ------------------------------------------------------------ ranking */

typedef struct { float s; uint32_t i; } scored_t;

/* A line break in the text between sentences a and b (a < b): a new paragraph. */
bool jobs_break_between(const folio_doc_view_t *v, uint32_t a, uint32_t b)
{
    for (uint32_t i = v->sents[a].end; i < v->sents[b].start; i++)
        if (v->text[i] == '\n') return true;
    return false;
}

static int cmp_scored_desc(const void *a, const void *b)
{
    const scored_t *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i; /* ties: earlier sentence first */
}

/* rank[i] (0-based) of each sentence under score x; sentences with score
 * <= 0 get rank UINT32_MAX (not ranked). */
static folio_status_t ranks_of(const float *x, uint32_t n, uint32_t *rank)
{
    scored_t *s = malloc((n ? n : 1) * sizeof *s);
    FOLIO_CHECK_ALLOC(s);
    for (uint32_t i = 0; i < n; i++) { s[i].s = x[i]; s[i].i = i; }
    qsort(s, n, sizeof *s, cmp_scored_desc);
    for (uint32_t r = 0; r < n; r++) rank[s[r].i] = s[r].s > 0 ? r : UINT32_MAX;
    free(s);
    return FOLIO_OK;
}

static float cos_vec(const float *a, const float *b, uint32_t d)
{
    double ab = 0, aa = 0, bb = 0;
    for (uint32_t i = 0; i < d; i++) { ab += (double)a[i] * b[i]; aa += (double)a[i] * a[i]; bb += (double)b[i] * b[i]; }
    return aa > 0 && bb > 0 ? (float)(ab / sqrt(aa * bb)) : 0.0f;
}

folio_status_t folio_ask_doc(const folio_doc_view_t *v, const folio_doc_feats_t *f, const folio_query_t *q,
                             const folio_ask_cfg_t *cfg, uint32_t top_k, folio_answer_t **out, uint32_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    uint32_t ns = v->n_sents;
    if (ns == 0 || top_k == 0) return FOLIO_OK;
    folio_status_t st = FOLIO_OK;
    /* question terms known to this document: term id -> question weight */
    float *qidf = calloc(f->n_terms ? f->n_terms : 1, sizeof *qidf);  /* BM25 idf x qtf */
    float *qtfidf = calloc(f->n_terms ? f->n_terms : 1, sizeof *qtfidf); /* TF-IDF query vector */
    float *bm = calloc(ns, sizeof *bm), *sim = calloc(ns, sizeof *sim), *ctx = calloc(ns, sizeof *ctx);
    float *dns = calloc(ns, sizeof *dns);
    uint32_t *r4 = malloc(ns * sizeof *r4);
    float *fused = calloc(ns, sizeof *fused), *bm2 = calloc(ns, sizeof *bm2), *pscore = calloc(ns, sizeof *pscore);
    uint8_t *heading = calloc(ns, 1);
    uint32_t *r1 = malloc(ns * sizeof *r1), *r2 = malloc(ns * sizeof *r2), *r3 = malloc(ns * sizeof *r3);
    scored_t *order = malloc(ns * sizeof *order);
    folio_answer_t *ans = NULL;
    if (!qidf || !qtfidf || !bm || !sim || !ctx || !fused || !bm2 || !heading || !pscore || !dns || !r4 || !r1 || !r2 || !r3 || !order) { st = FOLIO_ERR_NOMEM; goto done; }
    uint32_t known = 0;
    double qn = 0;
    for (uint32_t i = 0; i < q->n; i++) {
        uint32_t id = jobs_termmap_get(&f->map, q->terms[i]);
        if (id == UINT32_MAX) continue;
        known++;
        float nt = (float)f->sf[id];
        qidf[id] += logf(1.0f + ((float)ns - nt + 0.5f) / (nt + 0.5f)) * (float)q->qtf[i];
        float w = (1.0f + logf((float)q->qtf[i])) * f->idf[id];
        qtfidf[id] = w;
        qn += (double)w * w;
    }
    if (known == 0) goto done; /* no word of the question occurs in the document */
    double avgl = 0;
    for (uint32_t s = 0; s < ns; s++) avgl += f->n_all[s];
    avgl = avgl / ns;
    if (avgl <= 0) avgl = 1;
    /* plain BM25 for --method bm25; the fused method saturates tf at once
     * (k1_fused = 0: the sum of idf of the question terms the sentence has,
     * no length penalty), which ranks sentences better on the dev questions */
    float k1 = cfg->method == FOLIO_ASK_BM25 ? cfg->k1 : cfg->k1_fused, b = cfg->b;
    for (uint32_t s = 0; s < ns; s++) {
        float acc = 0, dot = 0;
        double sn = 0;
        float lnorm = k1 * (1.0f - b + b * (float)f->n_all[s] / (float)avgl);
        for (uint32_t k = f->sent_off[s]; k < f->sent_off[s + 1]; k++) {
            uint32_t id = f->term[k];
            float tf = (float)f->tf[k];
            if (qidf[id] > 0) acc += qidf[id] * tf * (k1 + 1.0f) / (tf + lnorm);
            float w = (1.0f + logf(tf)) * f->idf[id];
            sn += (double)w * w;
            dot += w * qtfidf[id];
        }
        bm[s] = acc;
        sim[s] = sn > 0 && qn > 0 ? (float)(dot / sqrt(sn * qn)) : 0.0f;
    }
    if (cfg->method == FOLIO_ASK_BM25) {
        for (uint32_t s = 0; s < ns; s++) fused[s] = bm[s];
    } else {
        if (q->vec && v->sent_vecs && v->d == q->d) {
            for (uint32_t s = 0; s < ns; s++) {
                float c = cos_vec(q->vec, v->sent_vecs + (size_t)s * v->d, v->d);
                dns[s] = c > 0 ? c : 0; /* (0, 1]: cosine of unit-mean vectors */
            }
        }
        /* headings answer nothing, but a question word in a heading makes
         * its section more likely: each sentence gets its section title's
         * BM25 (w_section) and, for "how many / how much / how large ..."
         * questions, a bonus when it has a number (w_type) */
        float *secb = calloc(v->n_sections ? v->n_sections : 1, sizeof *secb);
        if (!secb) { st = FOLIO_ERR_NOMEM; goto done; }
        for (uint32_t s = 0; s < ns; s++) {
            /* short label lines ("Recommendation diversity.") act as headings
             * of what follows: they pass their match on to the next sentence */
            heading[s] = jobs_is_heading(v, s) || f->words[s] <= 3;
            uint32_t sec = v->sents[s].section;
            if (heading[s] && sec < v->n_sections && bm[s] > secb[sec]) secb[sec] = bm[s];
        }
        float bmax = 0;
        for (uint32_t s = 0; s < ns; s++) if (bm[s] > bmax) bmax = bm[s];
        for (uint32_t s = 0; s < ns; s++) {
            if (heading[s]) continue;
            uint32_t sec = v->sents[s].section;
            float x = bm[s];
            if (x > 0 || cfg->w_section > 0) {
                if (sec < v->n_sections) x += cfg->w_section * secb[sec];
            if (s > 0 && heading[s - 1] && !jobs_is_heading(v, s - 1)) x += bm[s - 1];
                if (q->numeric && f->has_num[s]) x += cfg->w_type * bmax;
            }
            /* dense similarity breaks ties among sentences that match the
             * same question terms (frequent with k1 = 0) */
            if (x > 0) x += cfg->w_tie * dns[s];
            bm2[s] = x;
        }
        free(secb);
        /* paragraphs: runs of sentences with no line break between them */
        for (uint32_t s = 0; s < ns;) {
            uint32_t e = s + 1;
            while (e < ns && !jobs_break_between(v, e - 1, e)) e++;
            float sum = 0, mx = 0;
            for (uint32_t k = s; k < e; k++) { sum += bm2[k]; if (bm2[k] > mx) mx = bm2[k]; }
            float par = e - s > 1 ? (sum - mx) / (float)(e - s - 1) : 0; /* the others' mean */
            for (uint32_t k = s; k < e; k++) pscore[k] = par;
            s = e;
        }
        for (uint32_t s = 0; s < ns; s++) {
            float c = bm2[s] + cfg->w_par * pscore[s];
            if (s > 0) c += cfg->w_context * bm2[s - 1];
            if (s + 1 < ns) c += cfg->w_context_next * bm2[s + 1];
            ctx[s] = heading[s] ? 0 : c;
            if (heading[s]) sim[s] = dns[s] = 0;
        }
        st = ranks_of(bm2, ns, r1);
        if (st == FOLIO_OK) st = ranks_of(sim, ns, r2);
        if (st == FOLIO_OK) st = ranks_of(ctx, ns, r3);
        if (st == FOLIO_OK) st = ranks_of(dns, ns, r4);
        if (st != FOLIO_OK) goto done;
        float K = (float)cfg->rrf_k;
        for (uint32_t s = 0; s < ns; s++) {
            float x = 0;
            if (r1[s] != UINT32_MAX) x += 1.0f / (K + (float)r1[s] + 1.0f);
            if (r2[s] != UINT32_MAX) x += cfg->w_dense / (K + (float)r2[s] + 1.0f);
            if (r3[s] != UINT32_MAX) x += cfg->w_ctx_rank / (K + (float)r3[s] + 1.0f);
            if (r4[s] != UINT32_MAX && (r1[s] != UINT32_MAX || r3[s] != UINT32_MAX))
                x += cfg->w_vec / (K + (float)r4[s] + 1.0f);
            fused[s] = heading[s] ? 0 : x;
        }
    }
    uint32_t m = 0;
    for (uint32_t s = 0; s < ns; s++)
        if (fused[s] > 0) { order[m].s = fused[s]; order[m].i = s; m++; }
    qsort(order, m, sizeof *order, cmp_scored_desc);
    { /* drop a sentence whose text repeats a better-ranked one */
        uint32_t w = 0;
        for (uint32_t i = 0; i < m && w < top_k; i++) {
            const folio_sentence_t *A = &v->sents[order[i].i];
            bool dup = false;
            for (uint32_t j = 0; j < w && !dup; j++) {
                const folio_sentence_t *B = &v->sents[order[j].i];
                dup = A->end - A->start == B->end - B->start &&
                      memcmp(v->text + A->start, v->text + B->start, A->end - A->start) == 0;
            }
            if (!dup) order[w++] = order[i];
        }
        m = w;
    }
    if (m > top_k) m = top_k;
    ans = calloc(m ? m : 1, sizeof *ans);
    if (!ans) { st = FOLIO_ERR_NOMEM; goto done; }
    for (uint32_t i = 0; i < m; i++) {
        uint32_t s = order[i].i;
        ans[i].doc = 0;
        ans[i].sent = s;
        ans[i].start = v->sents[s].start;
        ans[i].end = v->sents[s].end;
        ans[i].score = order[i].s;
    }
    *out = ans;
    *n_out = m;
    ans = NULL;
done:
    free(qidf); free(qtfidf); free(bm); free(sim); free(ctx); free(fused); free(bm2); free(heading); free(pscore); free(dns); free(r4);
    free(r1); free(r2); free(r3); free(order); free(ans);
    return st;
}

/* ------------------------------------------------------------ hit rule */

uint32_t folio_qa_first_hit(const char *text, size_t len, const char *const *golds, const size_t *gold_lens,
                            uint32_t n_golds, const folio_answer_t *spans, uint32_t n_spans)
{
    uint32_t best = 0;
    for (uint32_t g = 0; g < n_golds; g++) {
        size_t L = gold_lens[g];
        if (L == 0 || L > len) continue;
        uint8_t *cov = malloc(L);
        if (!cov) return 0;
        const char *p = text;
        uint32_t occ = 0;
        while (occ < 10000) {
            const char *hit = memmem(p, (size_t)(text + len - p), golds[g], L);
            if (!hit) break;
            occ++;
            size_t a = (size_t)(hit - text);
            memset(cov, 0, L);
            size_t covered = 0;
            uint32_t limit = best ? best - 1 : n_spans; /* only an earlier hit can improve */
            for (uint32_t k = 0; k < limit; k++) {
                size_t s0 = spans[k].start, s1 = spans[k].end;
                if (s1 > s0 + 1000) s1 = s0 + 1000; /* a span counts with its first 1,000 bytes */
                size_t lo = s0 > a ? s0 : a, hi = s1 < a + L ? s1 : a + L;
                for (size_t x = lo; x < hi; x++) if (!cov[x - a]) { cov[x - a] = 1; covered++; }
                if (2 * covered >= L) {
                    if (!best || k + 1 < best) best = k + 1;
                    break;
                }
            }
            p = hit + 1;
        }
        free(cov);
    }
    return best;
}

/* ------------------------------------------------------------ store */

typedef struct { uint32_t doc; float score; } docscore_t;

static int cmp_docscore(const void *a, const void *b)
{
    const docscore_t *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->doc < y->doc ? -1 : x->doc > y->doc;
}

static int cmp_answer(const void *a, const void *b)
{
    const folio_answer_t *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->doc != y->doc) return x->doc < y->doc ? -1 : 1;
    return x->start < y->start ? -1 : x->start > y->start;
}

folio_status_t folio_ask_store(folio_store_t *s, folio_store_reader_t *r, const folio_query_t *q, const folio_ask_cfg_t *cfg,
                               uint32_t top_k, uint32_t max_docs, folio_answer_t **out, uint32_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (max_docs == 0) max_docs = 20;
    if (q->n == 0 || top_k == 0) return FOLIO_OK;
    /* 1. doc-level BM25 from the postings: a sparse accumulator over the docs
     *    that contain some question term (never a scan of all documents) */
    size_t cap = 256, n = 0;
    docscore_t *acc = malloc(cap * sizeof *acc);
    FOLIO_CHECK_ALLOC(acc);
    uint64_t n_docs = 0;
    double avgdl = 1;
    folio_status_t st = FOLIO_OK;
    uint32_t max_df = 0;
    float *qidf_store = NULL, qidf_sum = 0;
    typedef struct { const folio_posting_t *p; uint32_t n, df; } plist_t;
    plist_t *pl = calloc(q->n, sizeof *pl);
    if (!pl) { free(acc); return FOLIO_ERR_NOMEM; }
    for (uint32_t i = 0; i < q->n; i++) {
        st = folio_store_postings(r, q->terms[i], &pl[i].p, &pl[i].n, &pl[i].df);
        if (st != FOLIO_OK) goto done;
        if (pl[i].df > max_df) max_df = pl[i].df;
    }
    {
        folio_store_info_t info;
        st = folio_store_info(s, &info);
        if (st != FOLIO_OK) goto done;
        n_docs = info.n_docs;
        avgdl = info.avg_doc_tokens;
    }
    if (n_docs < max_df) n_docs = max_df;
    if (avgdl <= 0) avgdl = 1;
    /* merge postings: docs are in increasing docnum order per term; a small
     * open hash from docnum to accumulator slot */
    size_t hcap = 1024;
    uint32_t *hslot = NULL;
    size_t total = 0;
    for (uint32_t i = 0; i < q->n; i++) total += pl[i].n;
    while (hcap < 2 * total + 2) hcap *= 2;
    hslot = malloc(hcap * sizeof *hslot);
    if (!hslot) { st = FOLIO_ERR_NOMEM; goto done; }
    memset(hslot, 0xff, hcap * sizeof *hslot);
    float *dl = NULL;
    for (uint32_t i = 0; i < q->n; i++) {
        if (!pl[i].n) continue;
        for (uint32_t j = 0; j < pl[i].n; j++) {
            uint32_t d = pl[i].p[j].doc;
            size_t h = (size_t)(d * 2654435761u) & (hcap - 1);
            while (hslot[h] != UINT32_MAX && acc[hslot[h]].doc != d) h = (h + 1) & (hcap - 1);
            if (hslot[h] == UINT32_MAX) {
                if (n == cap) {
                    cap *= 2;
                    docscore_t *na = realloc(acc, cap * sizeof *na);
                    if (!na) { st = FOLIO_ERR_NOMEM; goto done2; }
                    acc = na;
                }
                hslot[h] = (uint32_t)n;
                acc[n].doc = d;
                acc[n].score = 0;
                n++;
            }
        }
    }
    /* doc lengths of the candidate docs (one record lookup each) */
    dl = malloc((n ? n : 1) * sizeof *dl);
    if (!dl) { st = FOLIO_ERR_NOMEM; goto done2; }
    for (size_t i = 0; i < n; i++) {
        folio_stored_doc_t head;
        dl[i] = (float)avgdl;
        if (folio_store_get_head_by_num(r, acc[i].doc, &head) == FOLIO_OK) dl[i] = (float)head.n_tokens;
    }
    for (uint32_t i = 0; i < q->n; i++) {
        if (!pl[i].n) continue;
        float idf = logf(1.0f + ((float)n_docs - (float)pl[i].df + 0.5f) / ((float)pl[i].df + 0.5f));
        for (uint32_t j = 0; j < pl[i].n; j++) {
            uint32_t d = pl[i].p[j].doc;
            size_t h = (size_t)(d * 2654435761u) & (hcap - 1);
            while (acc[hslot[h]].doc != d) h = (h + 1) & (hcap - 1);
            uint32_t slot = hslot[h];
            float tf = (float)pl[i].p[j].tf;
            float norm = cfg->k1 * (1.0f - cfg->b + cfg->b * dl[slot] / (float)avgdl);
            acc[slot].score += idf * (float)q->qtf[i] * tf * (cfg->k1 + 1.0f) / (tf + norm);
        }
    }
    qsort(acc, n, sizeof *acc, cmp_docscore);
    if (n > max_docs) n = max_docs;
    qidf_store = calloc(q->n, sizeof *qidf_store);
    if (!qidf_store) { st = FOLIO_ERR_NOMEM; goto done2; }
    for (uint32_t i = 0; i < q->n; i++) {
        qidf_store[i] = pl[i].df ? logf(1.0f + ((float)n_docs - (float)pl[i].df + 0.5f) / ((float)pl[i].df + 0.5f)) : 0;
        qidf_sum += qidf_store[i];
    }
    /* 2. sentences within the candidate documents */
    {
        size_t acap = (size_t)n * top_k + 1, an = 0;
        folio_answer_t *all = malloc(acap * sizeof *all);
        if (!all) { st = FOLIO_ERR_NOMEM; goto done2; }
        float top = n ? acc[0].score : 1;
        for (size_t i = 0; i < n && st == FOLIO_OK; i++) {
            folio_stored_doc_t sd;
            st = folio_store_get_doc_by_num(r, acc[i].doc, &sd);
            if (st != FOLIO_OK) break;
            folio_doc_view_t v;
            folio_doc_view_from_stored(&sd, &v);
            folio_doc_feats_t *f = NULL;
            folio_answer_t *a = NULL;
            uint32_t na = 0;
            if (cfg->method == FOLIO_ASK_FOLIO && v.d) st = folio_query_encode((folio_query_t *)q, s, v.d);
            if (st == FOLIO_OK) st = folio_doc_feats_create(&v, &f);
            if (st == FOLIO_OK) st = folio_ask_doc(&v, f, q, cfg, top_k, &a, &na);
            if (st == FOLIO_OK && na) {
                /* sentence scores are per-document (in-document idf, rank
                 * fusion): scale to [0, 1] by the doc's best and weight by
                 * the document's BM25 relative to the best document */
                float best = a[0].score > 0 ? a[0].score : 1;
                for (uint32_t k = 0; k < na; k++) {
                    /* store-level evidence of the sentence itself: the sum
                     * of the store idf of the question terms it contains,
                     * relative to all question terms (comparable across docs) */
                    float g = 0;
                    for (uint32_t t = 0; t < q->n; t++) {
                        uint32_t id = jobs_termmap_get(&f->map, q->terms[t]);
                        if (id == UINT32_MAX) continue;
                        for (uint32_t x = f->sent_off[a[k].sent]; x < f->sent_off[a[k].sent + 1]; x++)
                            if (f->term[x] == id) { g += qidf_store[t]; break; }
                    }
                    all[an] = a[k];
                    all[an].doc = acc[i].doc;
                    float docpart = top > 0 ? acc[i].score / top : 1.0f;
                    all[an].score = cfg->w_doc * docpart + (1.0f - cfg->w_doc) * (qidf_sum > 0 ? g / qidf_sum : 0) +
                                    0.01f * (a[k].score / best); /* in-document rank breaks ties */
                    an++;
                }
            }
            free(a);
            folio_doc_feats_destroy(&f);
        }
        if (st == FOLIO_OK) {
            qsort(all, an, sizeof *all, cmp_answer);
            if (an > top_k) an = top_k;
            *out = all;
            *n_out = (uint32_t)an;
        } else {
            free(all);
        }
    }
done2:
    free(qidf_store);
    free(dl);
    free(hslot);
done:
    free(pl);
    free(acc);
    return st;
}
