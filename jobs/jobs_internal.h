/* jobs/jobs_internal.h — structures shared by the files of jobs/ (not a
 * public contract: use jobs.h). */
#ifndef FOLIO_JOBS_INTERNAL_H
#define FOLIO_JOBS_INTERNAL_H

#include "jobs.h"

/* Stem hash -> dense term id of one document (open addressing). */
typedef struct {
    uint64_t *keys;
    uint32_t *ids;    /* UINT32_MAX = empty slot */
    size_t cap;
    uint32_t n;
} jobs_termmap_t;

folio_status_t jobs_termmap_init(jobs_termmap_t *m, size_t max_terms);
uint32_t jobs_termmap_add(jobs_termmap_t *m, uint64_t h);
uint32_t jobs_termmap_get(const jobs_termmap_t *m, uint64_t h); /* UINT32_MAX when absent */
void jobs_termmap_free(jobs_termmap_t *m);

struct folio_doc_feats {
    folio_span_t *own_tokens;   /* when the view had none                       */
    uint64_t *own_stems;
    const folio_span_t *tokens; /* (n_tokens)                                   */
    const uint64_t *stems;      /* (n_tokens)                                   */
    uint32_t n_tokens, n_sents, n_terms;
    uint8_t *is_stop;           /* (n_tokens) stopword flag                     */
    /* sentence s has distinct index terms term[sent_off[s] .. sent_off[s+1])
     * with counts tf[...] (first-occurrence order) */
    uint32_t *sent_off;         /* (n_sents + 1)                                */
    uint32_t *term, *tf;        /* (sent_off[n_sents])                          */
    uint32_t *words;            /* (n_sents) whitespace words                   */
    uint32_t *n_all;            /* (n_sents) tokens incl. stopwords             */
    uint8_t *has_num;           /* (n_sents) the sentence has a token with a digit */
    uint32_t *sf;               /* (n_terms) sentences containing the term      */
    float *idf;                 /* (n_terms) log((n_sents+1)/(sf+0.5))          */
    jobs_termmap_t map;
};

/* Sentence s is a section heading or an all-caps line (jobs/summarize.c). */
bool jobs_is_heading(const folio_doc_view_t *v, uint32_t s);

/* A line break between sentences a < b (jobs/ask.c). */
bool jobs_break_between(const folio_doc_view_t *v, uint32_t a, uint32_t b);

/* Appends s as a JSON string ("..." with escapes) to b. */
folio_status_t jobs_buf_json_str(folio_buf_t *b, const char *s, size_t len);

#endif
