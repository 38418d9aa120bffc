/* workers/worker.c — the CPU worker: one document at a time through the
 * encoder, then pooling into sentence/section/document vectors and salience.
 * Buffers grow to the largest document seen and are reused. */
#include "workers.h"

#include <stdlib.h>
#include <string.h>

struct folio_worker {
    folio_worker_cfg_t cfg;
    char spec[FOLIO_PATTERN_SPEC_MAX];
    uint32_t d;
    float *X0; size_t X0_cap;          /* (n, d) embedding                  */
    float *sent; size_t sent_cap;      /* (n_sents, d)                      */
    float *sec; size_t sec_cap;        /* (n_sections, d)                   */
    float *blk; size_t blk_cap;        /* (n_blocks, d)                     */
    float *docv;                       /* (d)                               */
    float *sal; size_t sal_cap;        /* (n_sents)                         */
    uint32_t *rb, *re; size_t r_cap;   /* range begin/end scratch           */
    folio_encoded_t enc;
};

static folio_status_t grow_f(float **p, size_t *cap, size_t need)
{
    if (need <= *cap) return FOLIO_OK;
    float *q = realloc(*p, need * sizeof *q);
    FOLIO_CHECK_ALLOC(q);
    *p = q;
    *cap = need;
    return FOLIO_OK;
}

folio_status_t folio_worker_create(const folio_worker_cfg_t *cfg, folio_worker_t **out)
{
    *out = NULL;
    char err[256];
    FOLIO_CHECK_GENERIC(folio_pattern_validate(&cfg->pattern, err, sizeof err) == FOLIO_OK,
                        FOLIO_ERR_ARG, "invalid pattern: %s", err);
    if (cfg->backend == FOLIO_BACKEND_CUDA) {
        folio_log(FOLIO_LOG_ERROR, "--backend cuda: the CUDA ingest worker is not available in this build yet");
        return FOLIO_ERR_UNSUPPORTED;
    }
    folio_worker_t *w = calloc(1, sizeof *w);
    FOLIO_CHECK_ALLOC(w);
    w->cfg = *cfg;
    w->d = folio_pattern_dim(&cfg->pattern);
    folio_pattern_print(&cfg->pattern, w->spec, sizeof w->spec);
    w->docv = malloc(w->d * sizeof *w->docv);
    if (!w->docv) { free(w); return FOLIO_ERR_NOMEM; }
    *out = w;
    return FOLIO_OK;
}

void folio_worker_destroy(folio_worker_t **pw)
{
    if (!pw || !*pw) return;
    folio_worker_t *w = *pw;
    free(w->X0); free(w->sent); free(w->sec); free(w->blk); free(w->docv); free(w->sal);
    free(w->rb); free(w->re);
    folio_encoded_clear(&w->enc);
    free(w);
    *pw = NULL;
}

const char *folio_worker_pattern_spec(const folio_worker_t *w) { return w->spec; }

static folio_status_t ranges(folio_worker_t *w, size_t m)
{
    if (m <= w->r_cap) return FOLIO_OK;
    uint32_t *b = realloc(w->rb, m * sizeof *b);
    FOLIO_CHECK_ALLOC(b);
    w->rb = b;
    uint32_t *e = realloc(w->re, m * sizeof *e);
    FOLIO_CHECK_ALLOC(e);
    w->re = e;
    w->r_cap = m;
    return FOLIO_OK;
}

folio_status_t folio_worker_encode(folio_worker_t *w, const folio_doc_t *doc, const float *weights,
                                   folio_doc_results_t *res)
{
    memset(res, 0, sizeof *res);
    uint32_t n = doc->n_tokens, d = w->d;
    FOLIO_CHECK_GENERIC(n > 0, FOLIO_ERR_ARG, "%s: encode of a document without tokens", doc->id);
    FOLIO_TRY(grow_f(&w->X0, &w->X0_cap, (size_t)n * d));
    FOLIO_TRY(folio_embed(doc->text, doc->tokens, weights, n, d, FOLIO_EMBED_SEED, w->X0));
    folio_encoded_clear(&w->enc);
    FOLIO_TRY(folio_encoder_run(&w->cfg.pattern, NULL, w->X0, n, w->cfg.threads, &w->enc));

    const folio_encoded_t *e = &w->enc;
    uint32_t ns = doc->n_sents, nsec = doc->n_sections, nb = e->hier.count[1];
    size_t m = ns > nsec ? ns : nsec;
    FOLIO_TRY(ranges(w, m ? m : 1));
    FOLIO_TRY(grow_f(&w->sent, &w->sent_cap, (size_t)ns * d));
    FOLIO_TRY(grow_f(&w->sal, &w->sal_cap, ns));
    for (uint32_t i = 0; i < ns; i++) {
        w->rb[i] = doc->sents[i].tok_begin;
        w->re[i] = doc->sents[i].tok_end;
    }
    FOLIO_TRY(folio_pool_ranges(e->X, n, d, w->rb, w->re, ns, w->sent));
    FOLIO_TRY(folio_salience_ranges(&e->hier, e->mass, w->rb, w->re, ns, w->sal));

    /* Sections as token ranges: from the first token of their first sentence
     * to the last token of their last sentence. */
    FOLIO_TRY(grow_f(&w->sec, &w->sec_cap, (size_t)nsec * d));
    for (uint32_t i = 0; i < nsec; i++) {
        const folio_section_t *s = &doc->sections[i];
        if (s->sent_end > s->sent_begin) {
            w->rb[i] = doc->sents[s->sent_begin].tok_begin;
            w->re[i] = doc->sents[s->sent_end - 1].tok_end;
        } else {
            w->rb[i] = w->re[i] = 0;
        }
    }
    FOLIO_TRY(folio_pool_ranges(e->X, n, d, w->rb, w->re, nsec, w->sec));

    uint32_t all_b = 0, all_e = n;
    FOLIO_TRY(folio_pool_ranges(e->X, n, d, &all_b, &all_e, 1, w->docv));
    FOLIO_TRY(grow_f(&w->blk, &w->blk_cap, (size_t)nb * d));
    memcpy(w->blk, e->nodes, (size_t)nb * d * sizeof *w->blk); /* level-1 rows */

    res->pattern = w->spec;
    res->d = d;
    res->n_blocks = nb;
    res->sent_vecs = w->sent;
    res->block_vecs = w->blk;
    res->section_vecs = w->sec;
    res->doc_vec = w->docv;
    res->salience = w->sal;
    return FOLIO_OK;
}
