/* tests/unit/test_shard_common.h — invariant checks of an analyzed document,
 * shared by the shard test executables (header only: each test_*.c is its
 * own program). */
#ifndef FOLIO_TEST_SHARD_COMMON_H
#define FOLIO_TEST_SHARD_COMMON_H

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "shard/shard.h"

static inline bool tsh_is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Every invariant the rest of folio relies on; `what` names the document in
 * failure messages. */
static inline void tsh_check_doc(const folio_doc_t *d, const char *what)
{
    const char *s = d->text;
    /* tokens: non-empty, ordered, disjoint, inside the text */
    for (uint32_t i = 0; i < d->n_tokens; i++) {
        folio_span_t t = d->tokens[i];
        cr_assert(t.start < t.end && t.end <= d->len, "%s: token %u [%u,%u) out of range", what, i, t.start, t.end);
        cr_assert(t.end - t.start <= FOLIO_TOKEN_MAX_BYTES, "%s: token %u too long", what, i);
        if (i) cr_assert(d->tokens[i - 1].end <= t.start, "%s: tokens %u,%u overlap or out of order", what, i - 1, i);
        cr_assert_eq(d->term_hashes[i], folio_term_hash(s, t), "%s: term hash %u", what, i);
        cr_assert_eq(d->stem_hashes[i], folio_stem_hash(s, t), "%s: stem hash %u", what, i);
    }
    /* sentences: partition the tokens, ordered, trimmed spans around them */
    cr_assert(d->n_sents >= 1, "%s: no sentences", what);
    cr_assert_eq(d->sents[0].tok_begin, 0, "%s: first sentence does not start at token 0", what);
    cr_assert_eq(d->sents[d->n_sents - 1].tok_end, d->n_tokens, "%s: last sentence does not end at the last token", what);
    for (uint32_t k = 0; k < d->n_sents; k++) {
        const folio_sentence_t *S = &d->sents[k];
        cr_assert(S->tok_begin < S->tok_end, "%s: sentence %u has no tokens", what, k);
        cr_assert(S->tok_end - S->tok_begin <= FOLIO_SENT_MAX_TOKENS, "%s: sentence %u too long", what, k);
        if (k) {
            cr_assert_eq(d->sents[k - 1].tok_end, S->tok_begin, "%s: sentences %u,%u not contiguous", what, k - 1, k);
            cr_assert(d->sents[k - 1].end <= S->start, "%s: sentence spans %u,%u overlap", what, k - 1, k);
        }
        cr_assert(S->start <= d->tokens[S->tok_begin].start && S->end >= d->tokens[S->tok_end - 1].end &&
                      S->end <= d->len,
                  "%s: sentence %u span [%u,%u) does not cover its tokens", what, k, S->start, S->end);
        cr_assert(!tsh_is_space((unsigned char)s[S->start]) && !tsh_is_space((unsigned char)s[S->end - 1]),
                  "%s: sentence %u not trimmed", what, k);
        cr_assert(S->section < d->n_sections, "%s: sentence %u section out of range", what, k);
        const folio_section_t *X = &d->sections[S->section];
        cr_assert(k >= X->sent_begin && k < X->sent_end, "%s: sentence %u not inside its section", what, k);
    }
    /* sections: partition sentences and bytes */
    cr_assert(d->n_sections >= 1, "%s: no sections", what);
    cr_assert_eq(d->sections[0].sent_begin, 0, "%s", what);
    cr_assert_eq(d->sections[0].start, 0, "%s", what);
    cr_assert_eq(d->sections[d->n_sections - 1].sent_end, d->n_sents, "%s", what);
    cr_assert_eq(d->sections[d->n_sections - 1].end, d->len, "%s", what);
    for (uint32_t k = 0; k < d->n_sections; k++) {
        const folio_section_t *X = &d->sections[k];
        cr_assert(X->sent_begin < X->sent_end, "%s: section %u has no sentences", what, k);
        cr_assert(X->start <= X->end, "%s: section %u bytes", what, k);
        if (k) {
            cr_assert_eq(d->sections[k - 1].sent_end, X->sent_begin, "%s: sections %u,%u", what, k - 1, k);
            cr_assert_eq(d->sections[k - 1].end, X->start, "%s: section bytes %u,%u", what, k - 1, k);
        }
        cr_assert(X->title_start <= X->title_end && X->title_end <= d->len, "%s: section %u title", what, k);
        if (X->level == 0) cr_assert(k == 0 && X->title_start == X->title_end, "%s: untitled section %u", what, k);
        else {
            cr_assert(X->title_start < X->title_end, "%s: titled section %u has an empty title", what, k);
            /* the heading is the section's first sentence */
            const folio_sentence_t *H = &d->sents[X->sent_begin];
            cr_assert(X->title_start >= H->start && X->title_start < H->end, "%s: section %u title outside its first sentence", what, k);
        }
    }
}

/* Analyzes a copy of a C string into d (caller clears). */
static inline folio_status_t tsh_analyze(folio_doc_t *d, const char *text)
{
    memset(d, 0, sizeof *d);
    d->len = strlen(text);
    d->text = malloc(d->len + 1);
    memcpy(d->text, text, d->len + 1);
    d->id = strdup("t");
    d->title = strdup("");
    return folio_doc_analyze(d);
}

#endif
