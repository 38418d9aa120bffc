/* jobs/docfeat.c — document views and per-document lexical features shared
 * by summarize and ask. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jobs.h"
#include "jobs_internal.h"

void folio_doc_view_from_doc(const folio_doc_t *doc, folio_doc_view_t *v)
{
    memset(v, 0, sizeof *v);
    v->id = doc->id;
    v->text = doc->text;
    v->len = doc->len;
    v->sents = doc->sents;
    v->n_sents = doc->n_sents;
    v->sections = doc->sections;
    v->n_sections = doc->n_sections;
    v->tokens = doc->tokens;
    v->stem_hashes = doc->stem_hashes;
    v->n_tokens = doc->n_tokens;
}

void folio_doc_view_from_stored(const folio_stored_doc_t *doc, folio_doc_view_t *v)
{
    memset(v, 0, sizeof *v);
    v->id = doc->id;
    v->text = doc->text;
    v->len = doc->len;
    v->sents = doc->sents;
    v->n_sents = doc->n_sents;
    v->sections = doc->sections;
    v->n_sections = doc->n_sections;
    v->d = doc->d;
    v->sent_vecs = doc->sent_vecs;
    v->section_vecs = doc->section_vecs;
    v->doc_vec = doc->doc_vec;
    v->salience = doc->salience;
    v->n_tokens = doc->n_tokens;
}

/* ------------------------------------------------------------ term ids
 * Open-addressing map from stem hash to a dense per-document term id. */
static uint32_t map_find_or_add(jobs_termmap_t *m, uint64_t h, bool add)
{
    size_t mask = m->cap - 1;
    size_t i = (size_t)(h * 0x9E3779B97F4A7C15ull >> 17) & mask;
    for (;;) {
        if (m->ids[i] == UINT32_MAX) {
            if (!add) return UINT32_MAX;
            m->keys[i] = h;
            m->ids[i] = m->n++;
            return m->ids[i];
        }
        if (m->keys[i] == h) return m->ids[i];
        i = (i + 1) & mask;
    }
}

folio_status_t jobs_termmap_init(jobs_termmap_t *m, size_t max_terms)
{
    size_t cap = 16;
    while (cap < 2 * max_terms + 2) cap *= 2;
    m->cap = cap;
    m->n = 0;
    m->keys = malloc(cap * sizeof *m->keys);
    m->ids = malloc(cap * sizeof *m->ids);
    if (!m->keys || !m->ids) { jobs_termmap_free(m); return FOLIO_ERR_NOMEM; }
    memset(m->ids, 0xff, cap * sizeof *m->ids);
    return FOLIO_OK;
}

uint32_t jobs_termmap_add(jobs_termmap_t *m, uint64_t h) { return map_find_or_add(m, h, true); }
uint32_t jobs_termmap_get(const jobs_termmap_t *m, uint64_t h)
{
    return map_find_or_add((jobs_termmap_t *)m, h, false);
}

void jobs_termmap_free(jobs_termmap_t *m)
{
    free(m->keys);
    free(m->ids);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------ features */

static bool is_ws(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

static uint32_t count_words(const char *s, size_t len)
{
    uint32_t w = 0;
    bool in = false;
    for (size_t i = 0; i < len; i++) {
        bool ws = is_ws(s[i]);
        if (!ws && !in) w++;
        in = !ws;
    }
    return w;
}

/* Token is an index term: not a stopword, and not pure punctuation-free
 * digits of one char (numbers are kept: they matter in bills and papers). */
static bool index_term(const char *text, folio_span_t t, bool *stop)
{
    char norm[64];
    size_t n = folio_token_norm(text, t, norm, sizeof norm);
    *stop = folio_is_stopword(norm, n);
    return n > 0;
}

folio_status_t folio_doc_feats_create(const folio_doc_view_t *v, folio_doc_feats_t **out)
{
    *out = NULL;
    folio_doc_feats_t *f = calloc(1, sizeof *f);
    FOLIO_CHECK_ALLOC(f);
    folio_status_t st = FOLIO_OK;
    const folio_span_t *toks = v->tokens;
    const uint64_t *stems = v->stem_hashes;
    uint32_t nt = v->n_tokens;
    if (!toks) { /* stored docs: re-tokenize the text (same tokenizer, same indexes) */
        st = folio_tokenize(v->text, v->len, &f->own_tokens, &nt);
        if (st != FOLIO_OK) goto fail;
        toks = f->own_tokens;
    }
    if (!stems) {
        f->own_stems = malloc((nt ? nt : 1) * sizeof *f->own_stems);
        if (!f->own_stems) { st = FOLIO_ERR_NOMEM; goto fail; }
        for (uint32_t i = 0; i < nt; i++) f->own_stems[i] = folio_stem_hash(v->text, toks[i]);
        stems = f->own_stems;
    }
    f->tokens = toks;
    f->stems = stems;
    f->n_tokens = nt;
    f->n_sents = v->n_sents;
    uint32_t ns = v->n_sents;
    f->sent_off = calloc(ns + 1, sizeof *f->sent_off);
    f->words = calloc(ns ? ns : 1, sizeof *f->words);
    f->n_all = calloc(ns ? ns : 1, sizeof *f->n_all);
    f->term = malloc((nt ? nt : 1) * sizeof *f->term);
    f->tf = malloc((nt ? nt : 1) * sizeof *f->tf);
    f->is_stop = calloc(nt ? nt : 1, 1);
    f->has_num = calloc(ns ? ns : 1, 1);
    if (!f->sent_off || !f->words || !f->n_all || !f->term || !f->tf || !f->is_stop || !f->has_num) { st = FOLIO_ERR_NOMEM; goto fail; }
    st = jobs_termmap_init(&f->map, nt);
    if (st != FOLIO_OK) goto fail;
    for (uint32_t i = 0; i < nt; i++) {
        bool stop;
        index_term(v->text, toks[i], &stop);
        f->is_stop[i] = stop;
    }
    /* per sentence: distinct non-stopword terms with counts */
    uint32_t *last_seen = NULL, *pos_of = NULL;
    size_t k = 0;
    last_seen = calloc(nt ? nt : 1, sizeof *last_seen);
    pos_of = malloc((nt ? nt : 1) * sizeof *pos_of);
    if (!last_seen || !pos_of) { free(last_seen); free(pos_of); st = FOLIO_ERR_NOMEM; goto fail; }
    for (uint32_t s = 0; s < ns; s++) {
        const folio_sentence_t *S = &v->sents[s];
        f->sent_off[s] = (uint32_t)k;
        f->words[s] = count_words(v->text + S->start, S->end - S->start);
        uint32_t tb = S->tok_begin, te = S->tok_end > nt ? nt : S->tok_end;
        for (uint32_t t = tb; t < te; t++) {
            f->n_all[s]++;
            for (uint32_t c = toks[t].start; c < toks[t].end && !f->has_num[s]; c++)
                if (v->text[c] >= '0' && v->text[c] <= '9') f->has_num[s] = 1;
            if (f->is_stop[t]) continue;
            uint32_t id = jobs_termmap_add(&f->map, stems[t]);
            if (last_seen[id] == s + 1) { f->tf[pos_of[id]]++; continue; } /* ids < nt */
            last_seen[id] = s + 1;
            pos_of[id] = (uint32_t)k;
            f->term[k] = id;
            f->tf[k] = 1;
            k++;
        }
    }
    f->sent_off[ns] = (uint32_t)k;
    free(last_seen);
    free(pos_of);
    f->n_terms = f->map.n;
    f->sf = calloc(f->n_terms ? f->n_terms : 1, sizeof *f->sf);
    f->idf = malloc((f->n_terms ? f->n_terms : 1) * sizeof *f->idf);
    if (!f->sf || !f->idf) { st = FOLIO_ERR_NOMEM; goto fail; }
    for (size_t i = 0; i < k; i++) f->sf[f->term[i]]++;
    /* sentence-level IDF inside the document (sentences as documents) */
    for (uint32_t t = 0; t < f->n_terms; t++)
        f->idf[t] = logf(((float)ns + 1.0f) / ((float)f->sf[t] + 0.5f));
    *out = f;
    return FOLIO_OK;
fail:
    folio_doc_feats_destroy(&f);
    return st;
}

void folio_doc_feats_destroy(folio_doc_feats_t **pf)
{
    if (!pf || !*pf) return;
    folio_doc_feats_t *f = *pf;
    free(f->own_tokens);
    free(f->own_stems);
    free(f->sent_off);
    free(f->words);
    free(f->n_all);
    free(f->term);
    free(f->tf);
    free(f->is_stop);
    free(f->has_num);
    free(f->sf);
    free(f->idf);
    jobs_termmap_free(&f->map);
    free(f);
    *pf = NULL;
}

uint32_t folio_doc_feats_words(const folio_doc_feats_t *f, uint32_t sent)
{
    return sent < f->n_sents ? f->words[sent] : 0;
}
