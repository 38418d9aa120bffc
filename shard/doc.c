/* shard/doc.c — analysis of one document (hash, tokens, term and stem
 * hashes, sentences, sections) and its release. */
#include "shard_internal.h"

#include <stdlib.h>
#include <string.h>

static void free_analysis(folio_doc_t *doc)
{
    free(doc->tokens);
    free(doc->term_hashes);
    free(doc->stem_hashes);
    free(doc->sents);
    free(doc->sections);
    doc->tokens = NULL;
    doc->term_hashes = doc->stem_hashes = NULL;
    doc->sents = NULL;
    doc->sections = NULL;
    doc->n_tokens = doc->n_sents = doc->n_sections = 0;
}

static folio_status_t analyze(folio_doc_t *doc, bool segment)
{
    FOLIO_CHECK_GENERIC(doc && (doc->text || doc->len == 0), FOLIO_ERR_ARG, "folio_doc_analyze: no text");
    free_analysis(doc); /* analyzing twice replaces the first result */
    if (doc->len >= UINT32_MAX) return FOLIO_ERR_TOO_LARGE;
    const char *text = doc->text ? doc->text : "";
    folio_hash128(text, doc->len, doc->hash);

    folio_status_t st = folio_tokenize(text, doc->len, &doc->tokens, &doc->n_tokens);
    if (st != FOLIO_OK) goto fail;
    if (doc->n_tokens == 0) return FOLIO_ERR_EMPTY;

    /* Sentences first: the splitter's line table is freed before the hash
     * arrays (16 B a token) exist, which keeps the peak of a huge document
     * lower (text + 24 B a token + sentences). */
    if (segment) {
        st = folio_shard_segment(doc);
        if (st != FOLIO_OK) goto fail;
    }
    doc->term_hashes = malloc((size_t)doc->n_tokens * sizeof *doc->term_hashes);
    doc->stem_hashes = malloc((size_t)doc->n_tokens * sizeof *doc->stem_hashes);
    if (!doc->term_hashes || !doc->stem_hashes) { st = FOLIO_ERR_NOMEM; goto fail; }
    st = folio_shard_hash_tokens(text, doc->tokens, doc->n_tokens, doc->term_hashes, doc->stem_hashes);
    if (st != FOLIO_OK) goto fail;
    return FOLIO_OK;
fail:
    free_analysis(doc);
    return st;
}

folio_status_t folio_doc_analyze(folio_doc_t *doc) { return analyze(doc, true); }

folio_status_t folio_doc_analyze_terms(folio_doc_t *doc) { return analyze(doc, false); }

void folio_doc_clear(folio_doc_t *doc)
{
    if (!doc) return;
    free_analysis(doc);
    free(doc->id);
    free(doc->title);
    free(doc->text);
    free(doc->origin);
    memset(doc, 0, sizeof *doc);
}
