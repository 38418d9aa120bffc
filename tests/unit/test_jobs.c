/* tests/unit/test_jobs.c — summarize, ask and the QA hit rule on real dev
 * documents and on random ones, against simple reference computations. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/jobs.h"

/* ------------------------------------------------------------ helpers */

static char *dupn(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    cr_assert_not_null(p);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static void make_doc(folio_doc_t *d, const char *id, const char *text, size_t len)
{
    memset(d, 0, sizeof *d);
    d->id = dupn(id, strlen(id));
    d->title = dupn("", 0);
    d->origin = dupn("test", 4);
    d->text = dupn(text, len);
    d->len = len;
    cr_assert_eq(folio_doc_analyze(d), FOLIO_OK, "analyze %s", id);
}

/* Loads up to max rows of a dev JSONL file as analyzed documents; the
 * "summary" strings are returned too when refs is non-NULL. */
static size_t load_rows(const char *name, folio_doc_t *docs, char **refs, size_t max)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", FOLIO_DATA_DIR, name);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    char *line = NULL;
    size_t cap = 0, n = 0;
    ssize_t got;
    while (n < max && (got = getline(&line, &cap, f)) > 0) {
        folio_json_t *j = NULL;
        char err[128];
        cr_assert_eq(folio_json_parse(line, (size_t)got, &j, err, sizeof err), FOLIO_OK);
        size_t tl = 0, sl = 0;
        const char *id = folio_json_get_str(j, "id", NULL);
        const char *text = folio_json_get_str(j, "text", &tl);
        make_doc(&docs[n], id, text, tl);
        if (refs) {
            const char *s = folio_json_get_str(j, "summary", &sl);
            refs[n] = s ? dupn(s, sl) : NULL;
        }
        folio_json_free(&j);
        n++;
    }
    free(line);
    fclose(f);
    return n;
}

static uint32_t ws_words(const char *s, size_t n)
{
    uint32_t w = 0;
    bool in = false;
    for (size_t i = 0; i < n; i++) {
        bool ws = s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r' || s[i] == '\v' || s[i] == '\f';
        if (!ws && !in) w++;
        in = !ws;
    }
    return w;
}

/* Checks the contract of a summary: picks are sentences of the doc (offsets
 * equal to the sentence's, so they slice the original text), in document
 * order, distinct, within the budget. */
static void check_summary(const folio_doc_t *d, const folio_pick_t *p, uint32_t n, const folio_summarize_cfg_t *cfg)
{
    uint32_t words = 0;
    for (uint32_t i = 0; i < n; i++) {
        cr_assert_lt(p[i].index, d->n_sents);
        const folio_sentence_t *S = &d->sents[p[i].index];
        cr_assert_eq(p[i].start, S->start, "%s: pick %u start", d->id, i);
        cr_assert_eq(p[i].end, S->end, "%s: pick %u end", d->id, i);
        cr_assert_leq(p[i].end, d->len);
        cr_assert_lt(p[i].start, p[i].end);
        if (i) cr_assert_gt(p[i].index, p[i - 1].index, "%s: document order", d->id);
        words += ws_words(d->text + p[i].start, p[i].end - p[i].start);
    }
    if (cfg->max_words) cr_assert_leq(words, cfg->max_words, "%s: %u words > budget %u", d->id, words, cfg->max_words);
    if (cfg->max_sents) cr_assert_leq(n, cfg->max_sents, "%s: sentence budget", d->id);
}

static void summarize_doc(const folio_doc_t *d, const folio_summarize_cfg_t *cfg, folio_pick_t **p, uint32_t *n)
{
    folio_doc_view_t v;
    folio_doc_view_from_doc(d, &v);
    folio_doc_feats_t *f = NULL;
    cr_assert_eq(folio_doc_feats_create(&v, &f), FOLIO_OK);
    cr_assert_eq(folio_summarize(&v, f, cfg, p, n), FOLIO_OK);
    folio_doc_feats_destroy(&f);
    cr_assert_null(f);
}

/* ------------------------------------------------------------ summarize */

Test(jobs_summarize, real_docs_offsets_order_budget)
{
    static folio_doc_t docs[12];
    const char *sets[] = {"pubmed-dev.jsonl", "billsum-dev.jsonl", "sciqa-dev.jsonl"};
    for (int k = 0; k < 3; k++) {
        size_t n = load_rows(sets[k], docs, NULL, 4);
        for (size_t i = 0; i < n; i++) {
            const uint32_t budgets[] = {200, 57, 13, 1};
            for (int b = 0; b < 4; b++) {
                folio_summarize_cfg_t cfg;
                folio_summarize_cfg_default(&cfg);
                cfg.max_words = budgets[b];
                folio_pick_t *p = NULL;
                uint32_t np = 0;
                summarize_doc(&docs[i], &cfg, &p, &np);
                check_summary(&docs[i], p, np, &cfg);
                if (budgets[b] >= 57) cr_assert_gt(np, 0, "%s: empty summary at %u words", docs[i].id, budgets[b]);
                free(p);
            }
            folio_summarize_cfg_t cfg;
            folio_summarize_cfg_default(&cfg);
            cfg.max_words = 0;
            cfg.max_sents = 3;
            folio_pick_t *p = NULL;
            uint32_t np = 0;
            summarize_doc(&docs[i], &cfg, &p, &np);
            check_summary(&docs[i], p, np, &cfg);
            cr_assert_eq(np, 3u, "%s: 3 sentences asked", docs[i].id);
            free(p);
            folio_doc_clear(&docs[i]);
        }
    }
}

Test(jobs_summarize, one_sentence_document)
{
    folio_doc_t d;
    const char *t = "  Only one sentence lives in this tiny document about sparse attention.\n";
    make_doc(&d, "one", t, strlen(t));
    cr_assert_eq(d.n_sents, 1u);
    folio_summarize_cfg_t cfg;
    folio_summarize_cfg_default(&cfg);
    folio_pick_t *p = NULL;
    uint32_t n = 0;
    summarize_doc(&d, &cfg, &p, &n);
    cr_assert_eq(n, 1u);
    cr_assert_eq(p[0].index, 0u);
    cr_assert_eq(strncmp(d.text + p[0].start, "Only one sentence", 17), 0);
    free(p);
    /* a budget smaller than the sentence: nothing rather than a broken sentence */
    cfg.max_words = 3;
    summarize_doc(&d, &cfg, &p, &n);
    cr_assert_eq(n, 0u);
    free(p);
    folio_doc_clear(&d);
}

Test(jobs_summarize, no_budget_is_an_error)
{
    folio_doc_t d;
    const char *t = "A sentence here. Another sentence there.";
    make_doc(&d, "x", t, strlen(t));
    folio_summarize_cfg_t cfg;
    folio_summarize_cfg_default(&cfg);
    cfg.max_words = 0;
    cfg.max_sents = 0;
    folio_doc_view_t v;
    folio_doc_view_from_doc(&d, &v);
    folio_doc_feats_t *f = NULL;
    cr_assert_eq(folio_doc_feats_create(&v, &f), FOLIO_OK);
    folio_pick_t *p = NULL;
    uint32_t n = 0;
    cr_expect_eq(folio_summarize(&v, f, &cfg, &p, &n), FOLIO_ERR_ARG);
    folio_doc_feats_destroy(&f);
    folio_doc_clear(&d);
}

/* Reference centroid selection: with MMR off (lambda = 1), position and the
 * other features off, and no sentence filter, the summary under a sentence
 * budget of k is the k sentences of highest TF-IDF cosine to the centroid,
 * recomputed here from the tokens with plain loops. */
Test(jobs_summarize, centroid_matches_reference)
{
    static folio_doc_t docs[3];
    size_t nd = load_rows("billsum-dev.jsonl", docs, NULL, 3);
    for (size_t di = 0; di < nd; di++) {
        folio_doc_t *d = &docs[di];
        uint32_t ns = d->n_sents;
        /* distinct non-stopword stems per sentence with counts, the naive way */
        typedef struct { uint64_t h; uint32_t tf; } tc_t;
        tc_t **st = calloc(ns, sizeof *st);
        uint32_t *sn = calloc(ns, sizeof *sn);
        for (uint32_t s = 0; s < ns; s++) {
            st[s] = calloc(d->sents[s].tok_end - d->sents[s].tok_begin + 1, sizeof **st);
            for (uint32_t t = d->sents[s].tok_begin; t < d->sents[s].tok_end; t++) {
                char norm[64];
                size_t nl = folio_token_norm(d->text, d->tokens[t], norm, sizeof norm);
                if (folio_is_stopword(norm, nl)) continue;
                uint32_t j = 0;
                while (j < sn[s] && st[s][j].h != d->stem_hashes[t]) j++;
                if (j == sn[s]) { st[s][j].h = d->stem_hashes[t]; st[s][j].tf = 0; sn[s]++; }
                st[s][j].tf++;
            }
        }
        /* sentence frequency and idf */
        double *cos = calloc(ns, sizeof *cos);
        double *w_all = NULL;
        size_t tot = 0;
        for (uint32_t s = 0; s < ns; s++) tot += sn[s];
        w_all = calloc(tot + 1, sizeof *w_all);
        size_t k = 0;
        /* unit vectors */
        for (uint32_t s = 0; s < ns; s++) {
            double nn = 0;
            for (uint32_t j = 0; j < sn[s]; j++) {
                uint32_t sf = 0;
                for (uint32_t r = 0; r < ns; r++)
                    for (uint32_t q = 0; q < sn[r]; q++) if (st[r][q].h == st[s][j].h) { sf++; break; }
                double idf = log(((double)ns + 1.0) / ((double)sf + 0.5));
                double w = (1.0 + log((double)st[s][j].tf)) * idf;
                w_all[k + j] = w;
                nn += w * w;
            }
            for (uint32_t j = 0; j < sn[s]; j++) w_all[k + j] /= nn > 0 ? sqrt(nn) : 1;
            k += sn[s];
        }
        /* centroid . unit vector, over all sentence pairs */
        size_t ks = 0;
        for (uint32_t s = 0; s < ns; s++) {
            double dot = 0;
            size_t kr = 0;
            for (uint32_t r = 0; r < ns; r++) {
                for (uint32_t j = 0; j < sn[s]; j++)
                    for (uint32_t q = 0; q < sn[r]; q++)
                        if (st[r][q].h == st[s][j].h) dot += w_all[ks + j] * w_all[kr + q];
                kr += sn[r];
            }
            cos[s] = dot;
            ks += sn[s];
        }
        folio_summarize_cfg_t cfg;
        folio_summarize_cfg_default(&cfg);
        cfg.max_words = 0;
        cfg.max_sents = 4;
        cfg.w_position = 0;
        cfg.w_dense = 0;
        cfg.w_salience = 0;
        cfg.w_central = 0;
        cfg.mmr_lambda = 1.0f;
        cfg.min_tokens = 1;
        cfg.section_cover = false;
        folio_pick_t *p = NULL;
        uint32_t np = 0;
        summarize_doc(d, &cfg, &p, &np);
        cr_assert_eq(np, 4u);
        /* every chosen sentence scores at least as high as every other
         * eligible (non-heading, non-empty) sentence, up to float rounding */
        double min_chosen = INFINITY;
        for (uint32_t i = 0; i < np; i++) if (cos[p[i].index] < min_chosen) min_chosen = cos[p[i].index];
        uint32_t better = 0;
        for (uint32_t s = 0; s < ns; s++) {
            bool chosen = false;
            for (uint32_t i = 0; i < np; i++) chosen |= p[i].index == s;
            if (!chosen && sn[s] > 0 && cos[s] > min_chosen * (1 + 1e-4)) {
                /* allowed only for headings, which the summarizer never picks */
                bool upper = true;
                uint32_t letters = 0;
                for (uint32_t c = d->sents[s].start; c < d->sents[s].end; c++) {
                    char ch = d->text[c];
                    if (ch >= 'a' && ch <= 'z') upper = false;
                    letters += (ch >= 'A' && ch <= 'Z');
                }
                bool title = false;
                for (uint32_t x = 0; x < d->n_sections; x++)
                    title |= d->sents[s].start >= d->sections[x].title_start && d->sents[s].end <= d->sections[x].title_end &&
                             d->sections[x].title_end > d->sections[x].title_start;
                if (!(upper && letters >= 4) && !title) better++;
            }
        }
        cr_expect_eq(better, 0u, "%s: %u unchosen sentences beat the chosen ones", d->id, better);
        free(p);
        for (uint32_t s = 0; s < ns; s++) free(st[s]);
        free(st); free(sn); free(cos); free(w_all);
        folio_doc_clear(d);
    }
}

/* ------------------------------------------------------------ ask */

static void ask(const folio_doc_t *d, const char *question, folio_ask_method_t m, uint32_t k, folio_answer_t **a,
                uint32_t *n)
{
    folio_doc_view_t v;
    folio_doc_view_from_doc(d, &v);
    folio_doc_feats_t *f = NULL;
    cr_assert_eq(folio_doc_feats_create(&v, &f), FOLIO_OK);
    folio_query_t *q = NULL;
    cr_assert_eq(folio_query_create(question, strlen(question), &q), FOLIO_OK);
    folio_ask_cfg_t cfg;
    folio_ask_cfg_default(&cfg);
    cfg.method = m;
    cr_assert_eq(folio_ask_doc(&v, f, q, &cfg, k, a, n), FOLIO_OK);
    folio_query_destroy(&q);
    cr_assert_null(q);
    folio_doc_feats_destroy(&f);
}

Test(jobs_ask, answers_slice_sentences_exactly)
{
    static folio_doc_t docs[22];
    size_t nd = load_rows("sciqa-dev.jsonl", docs, NULL, 5);
    const char *qs[] = {"What dataset do they use?", "How many annotators participated?",
                        "Which baseline model is used?", "what languages"};
    for (size_t i = 0; i < nd; i++) {
        for (int m = 0; m < 2; m++)
            for (size_t j = 0; j < 4; j++) {
                folio_answer_t *a = NULL;
                uint32_t n = 0;
                ask(&docs[i], qs[j], (folio_ask_method_t)m, 7, &a, &n);
                cr_assert_leq(n, 7u);
                for (uint32_t k = 0; k < n; k++) {
                    const folio_sentence_t *S = &docs[i].sents[a[k].sent];
                    cr_assert_eq(a[k].start, S->start);
                    cr_assert_eq(a[k].end, S->end);
                    if (k) cr_assert_geq(a[k - 1].score, a[k].score, "rank order");
                    for (uint32_t l = 0; l < k; l++) cr_assert_neq(a[l].sent, a[k].sent, "distinct answers");
                }
                free(a);
            }
        folio_doc_clear(&docs[i]);
    }
}

Test(jobs_ask, unknown_words_give_no_answer)
{
    folio_doc_t d;
    const char *t = "Sparse attention scales linearly. The store keeps every vector.";
    make_doc(&d, "x", t, strlen(t));
    folio_answer_t *a = NULL;
    uint32_t n = 7;
    ask(&d, "zebra quagga okapi?", FOLIO_ASK_FOLIO, 5, &a, &n);
    cr_expect_eq(n, 0u);
    free(a);
    ask(&d, "", FOLIO_ASK_BM25, 5, &a, &n);
    cr_expect_eq(n, 0u);
    free(a);
    ask(&d, "Which vector does the store keep?", FOLIO_ASK_BM25, 5, &a, &n);
    cr_assert_geq(n, 1u);
    cr_expect_eq(a[0].sent, 1u);
    free(a);
    folio_doc_clear(&d);
}

/* Plain BM25 against a from-scratch reference on random documents over a
 * small vocabulary (so terms repeat and lengths vary). */
Test(jobs_ask, bm25_matches_reference)
{
    static const char *const vocab[] = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "kappa",
                                        "lambda", "sigma", "omega", "vector", "matrix", "tensor"};
    const size_t V = sizeof vocab / sizeof vocab[0];
    uint64_t rng = 7;
    for (int trial = 0; trial < 25; trial++) {
        folio_buf_t b = {0};
        uint32_t ns = 1 + (uint32_t)(folio_splitmix64(&rng) % 17);
        for (uint32_t s = 0; s < ns; s++) {
            uint32_t len = 1 + (uint32_t)(folio_splitmix64(&rng) % 9);
            for (uint32_t w = 0; w < len; w++) {
                const char *word = vocab[folio_splitmix64(&rng) % V];
                folio_buf_printf(&b, "%s%s", w ? " " : (s ? " " : ""), word);
            }
            folio_buf_append(&b, ".", 1);
        }
        folio_doc_t d;
        make_doc(&d, "r", b.data, b.len);
        folio_buf_free(&b);
        const char *qw[3] = {vocab[folio_splitmix64(&rng) % V], vocab[folio_splitmix64(&rng) % V],
                             vocab[folio_splitmix64(&rng) % V]};
        char question[128];
        snprintf(question, sizeof question, "%s %s %s", qw[0], qw[1], qw[2]);
        folio_answer_t *a = NULL;
        uint32_t n = 0;
        ask(&d, question, FOLIO_ASK_BM25, d.n_sents, &a, &n);
        /* reference: over the sentences as analyzed (tokens, stems) */
        uint32_t S = d.n_sents;
        double avg = 0;
        for (uint32_t s = 0; s < S; s++) avg += d.sents[s].tok_end - d.sents[s].tok_begin;
        avg /= S;
        double *ref = calloc(S, sizeof *ref);
        uint64_t qh[3];
        uint32_t qn = 0, qtf[3] = {0};
        folio_span_t *qt = NULL;
        uint32_t nqt = 0;
        cr_assert_eq(folio_tokenize(question, strlen(question), &qt, &nqt), FOLIO_OK);
        for (uint32_t i = 0; i < nqt; i++) {
            uint64_t h = folio_stem_hash(question, qt[i]);
            uint32_t j = 0;
            while (j < qn && qh[j] != h) j++;
            if (j == qn) qh[qn++] = h;
            qtf[j]++;
        }
        free(qt);
        for (uint32_t j = 0; j < qn; j++) {
            uint32_t nt = 0;
            for (uint32_t s = 0; s < S; s++) {
                bool has = false;
                for (uint32_t t = d.sents[s].tok_begin; t < d.sents[s].tok_end; t++) has |= d.stem_hashes[t] == qh[j];
                nt += has;
            }
            double idf = log(1.0 + (S - nt + 0.5) / (nt + 0.5));
            for (uint32_t s = 0; s < S; s++) {
                double tf = 0;
                for (uint32_t t = d.sents[s].tok_begin; t < d.sents[s].tok_end; t++) tf += d.stem_hashes[t] == qh[j];
                double len = d.sents[s].tok_end - d.sents[s].tok_begin;
                if (tf > 0) ref[s] += qtf[j] * idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * len / avg));
            }
        }
        uint32_t nz = 0;
        for (uint32_t s = 0; s < S; s++) nz += ref[s] > 0;
        /* every sentence with a positive reference score is returned (unless
         * its text repeats a better one), with that score */
        for (uint32_t k = 0; k < n; k++)
            cr_expect_float_eq(a[k].score, ref[a[k].sent], 1e-4 * (1 + ref[a[k].sent]), "trial %d sent %u", trial,
                               a[k].sent);
        cr_expect_leq(n, nz);
        free(a);
        free(ref);
        folio_doc_clear(&d);
    }
}

/* ------------------------------------------------------------ hit rule */

Test(jobs_qa, hit_rule)
{
    const char *text = "aaaa GOLD ANSWER HERE bbbb cccc GOLD ANSWER HERE dddd";
    size_t len = strlen(text);
    const char *golds[] = {"GOLD ANSWER HERE"}; /* 16 bytes at 5 and 32 */
    size_t gl[] = {16};
    folio_answer_t sp[4];
    memset(sp, 0, sizeof sp);
    /* 7 bytes of the first occurrence: < half */
    sp[0].start = 0; sp[0].end = 12;
    /* 8 more bytes of the same occurrence: the union covers 15 >= 8 */
    sp[1].start = 12; sp[1].end = 20;
    cr_expect_eq(folio_qa_first_hit(text, len, golds, gl, 1, sp, 1), 0u);
    cr_expect_eq(folio_qa_first_hit(text, len, golds, gl, 1, sp, 2), 2u);
    /* exactly half of the second occurrence hits at rank 1 */
    sp[0].start = 40; sp[0].end = 48;
    cr_expect_eq(folio_qa_first_hit(text, len, golds, gl, 1, sp, 1), 1u);
    /* coverage split across occurrences does not add up */
    sp[0].start = 13; sp[0].end = 21; /* 8 bytes of occurrence 1 */
    sp[1].start = 32; sp[1].end = 39; /* 7 bytes of occurrence 2 */
    cr_expect_eq(folio_qa_first_hit(text, len, golds, gl, 1, sp, 1), 1u); /* 8 of 16: hit */
    sp[0].start = 14; sp[0].end = 21; /* 7 bytes */
    cr_expect_eq(folio_qa_first_hit(text, len, golds, gl, 1, sp, 2), 0u);
    /* a span counts with its first 1,000 bytes only */
    char *big = calloc(3000, 1);
    memset(big, 'x', 2999);
    memcpy(big + 1500, "NEEDLE", 6);
    const char *g2[] = {"NEEDLE"};
    size_t gl2[] = {6};
    folio_answer_t one = {.start = 0, .end = 2999};
    cr_expect_eq(folio_qa_first_hit(big, 2999, g2, gl2, 1, &one, 1), 0u);
    one.start = 600;
    cr_expect_eq(folio_qa_first_hit(big, 2999, g2, gl2, 1, &one, 1), 1u);
    free(big);
    /* an answer that does not occur never hits */
    const char *g3[] = {"MISSING"};
    size_t gl3[] = {7};
    one.start = 0; one.end = (uint32_t)len;
    cr_expect_eq(folio_qa_first_hit(text, len, g3, gl3, 1, &one, 1), 0u);
}

/* ------------------------------------------------------------ JSON */

Test(jobs_json, summary_json_parses_and_escapes)
{
    folio_doc_t d;
    const char *t = "He said \"stop\".\tThen\\ she left. Tab\tand quote \" end.";
    make_doc(&d, "id\"1", t, strlen(t));
    folio_doc_view_t v;
    folio_doc_view_from_doc(&d, &v);
    folio_pick_t p[2] = {{0, d.sents[0].start, d.sents[0].end, 1.5f},
                         {d.n_sents - 1, d.sents[d.n_sents - 1].start, d.sents[d.n_sents - 1].end, 0.25f}};
    folio_buf_t b = {0};
    cr_assert_eq(folio_summary_json(&v, p, 2, &b), FOLIO_OK);
    folio_json_t *j = NULL;
    char err[128];
    cr_assert_eq(folio_json_parse(b.data, b.len, &j, err, sizeof err), FOLIO_OK, "%s: %s", b.data, err);
    cr_expect_str_eq(folio_json_get_str(j, "doc", NULL), "id\"1");
    const folio_json_t *ss = folio_json_get(j, "sentences");
    cr_assert_eq(ss->n, 2u);
    size_t tl = 0;
    const char *t0 = folio_json_get_str(ss->items[0], "text", &tl);
    cr_expect_eq(tl, (size_t)(d.sents[0].end - d.sents[0].start));
    cr_expect_eq(memcmp(t0, d.text + d.sents[0].start, tl), 0);
    folio_json_free(&j);
    folio_buf_free(&b);
    folio_doc_clear(&d);
}

/* ------------------------------------------------------------ store */

/* Store-wide ask: candidate documents come from the postings, answers slice
 * the stored text, and the document that holds the answer wins. */
Test(jobs_store, ask_across_store)
{
    char dir[] = "/tmp/folio-test-jobs-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    folio_store_t *s = NULL;
    cr_assert_eq(folio_store_open(dir, NULL, &s), FOLIO_OK);
    static folio_doc_t docs[8];
    size_t nd = load_rows("billsum-dev.jsonl", docs, NULL, 6);
    for (size_t i = 0; i < nd; i++) cr_assert_eq(folio_store_commit_doc(s, &docs[i], NULL), FOLIO_OK);
    folio_doc_t extra;
    const char *t = "Glaciers retreat every summer. The penguin colony counts nine thousand birds near the pole.";
    make_doc(&extra, "penguins", t, strlen(t));
    cr_assert_eq(folio_store_commit_doc(s, &extra, NULL), FOLIO_OK);
    folio_store_reader_t *r = NULL;
    cr_assert_eq(folio_store_reader_open(s, &r), FOLIO_OK);
    folio_query_t *q = NULL;
    const char *question = "How many birds are in the penguin colony?";
    cr_assert_eq(folio_query_create(question, strlen(question), &q), FOLIO_OK);
    folio_ask_cfg_t cfg;
    folio_ask_cfg_default(&cfg);
    folio_answer_t *a = NULL;
    uint32_t n = 0;
    cr_assert_eq(folio_ask_store(s, r, q, &cfg, 5, 0, &a, &n), FOLIO_OK);
    cr_assert_geq(n, 1u);
    folio_stored_doc_t d;
    cr_assert_eq(folio_store_get_doc_by_num(r, a[0].doc, &d), FOLIO_OK);
    cr_expect_str_eq(d.id, "penguins");
    cr_expect_eq(strncmp(d.text + a[0].start, "The penguin colony", 18), 0);
    for (uint32_t i = 0; i < n; i++) {
        cr_assert_eq(folio_store_get_doc_by_num(r, a[i].doc, &d), FOLIO_OK);
        cr_assert_leq(a[i].end, d.len);
        bool is_sentence = false;
        for (uint32_t k = 0; k < d.n_sents; k++)
            is_sentence |= d.sents[k].start == a[i].start && d.sents[k].end == a[i].end;
        cr_expect(is_sentence, "answer %u is a stored sentence", i);
        if (i) cr_expect_geq(a[i - 1].score, a[i].score);
    }
    free(a);
    folio_query_destroy(&q);
    /* no known word: nothing, no error */
    cr_assert_eq(folio_query_create("zyzzyva", 7, &q), FOLIO_OK);
    cr_assert_eq(folio_ask_store(s, r, q, &cfg, 5, 0, &a, &n), FOLIO_OK);
    cr_expect_eq(n, 0u);
    free(a);
    folio_query_destroy(&q);
    /* the stored view summarizes like the in-memory one (same sentences) */
    cr_assert_eq(folio_store_get_doc(r, docs[0].id, &d), FOLIO_OK);
    folio_doc_view_t vs, vm;
    folio_doc_view_from_stored(&d, &vs);
    folio_doc_view_from_doc(&docs[0], &vm);
    folio_doc_feats_t *fs = NULL, *fm = NULL;
    cr_assert_eq(folio_doc_feats_create(&vs, &fs), FOLIO_OK);
    cr_assert_eq(folio_doc_feats_create(&vm, &fm), FOLIO_OK);
    folio_summarize_cfg_t sc;
    folio_summarize_cfg_default(&sc);
    folio_pick_t *ps = NULL, *pm = NULL;
    uint32_t ns = 0, nm = 0;
    cr_assert_eq(folio_summarize(&vs, fs, &sc, &ps, &ns), FOLIO_OK);
    cr_assert_eq(folio_summarize(&vm, fm, &sc, &pm, &nm), FOLIO_OK);
    cr_assert_eq(ns, nm);
    for (uint32_t i = 0; i < ns; i++) cr_expect_eq(ps[i].index, pm[i].index);
    free(ps);
    free(pm);
    folio_doc_feats_destroy(&fs);
    folio_doc_feats_destroy(&fm);
    folio_store_reader_close(&r);
    folio_store_close(&s);
    for (size_t i = 0; i < nd; i++) folio_doc_clear(&docs[i]);
    folio_doc_clear(&extra);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

/* Section coverage: four sections about different things, the first one
 * much longer (so centrality alone would draw every pick from it); with a
 * budget for several sentences, every section gets a voice. */
Test(jobs_summarize, every_major_section_gets_a_voice)
{
    folio_buf_t b = {0};
    const char *topics[4][3] = {{"reactor", "coolant", "turbine"},
                                {"orchard", "apples", "harvest"},
                                {"violin", "concerto", "orchestra"},
                                {"glacier", "penguins", "iceberg"}};
    const char *titles[4] = {"Energy", "Farming", "Music", "Polar"};
    for (int x = 0; x < 4; x++) {
        folio_buf_printf(&b, "%d. %s\n\n", x + 1, titles[x]);
        int n = x == 0 ? 12 : 4;
        for (int i = 0; i < n; i++)
            folio_buf_printf(&b, "The %s and the %s depend on the %s in case %d of this part. ", topics[x][i % 3],
                             topics[x][(i + 1) % 3], topics[x][(i + 2) % 3], i);
        folio_buf_append(&b, "\n\n", 2);
    }
    folio_doc_t d;
    make_doc(&d, "sections", b.data, b.len);
    folio_buf_free(&b);
    uint32_t major = 0;
    for (uint32_t x = 0; x < d.n_sections; x++) major += d.sections[x].sent_end - d.sections[x].sent_begin >= 3;
    cr_assert_geq(major, 4u, "the test document should have 4 sections (got %u of %u)", major, d.n_sections);
    folio_summarize_cfg_t cfg;
    folio_summarize_cfg_default(&cfg);
    cfg.max_words = 0;
    cfg.max_sents = 5;
    cfg.w_position = 0;
    folio_pick_t *p = NULL;
    uint32_t n = 0;
    summarize_doc(&d, &cfg, &p, &n);
    check_summary(&d, p, n, &cfg);
    for (int x = 0; x < 4; x++) {
        bool seen = false;
        for (uint32_t i = 0; i < n; i++) seen |= strstr(d.text + p[i].start, topics[x][0]) < d.text + p[i].end &&
                                                  strstr(d.text + p[i].start, topics[x][0]) != NULL;
        cr_expect(seen, "no sentence about %s", titles[x]);
    }
    free(p);
    folio_doc_clear(&d);
}
