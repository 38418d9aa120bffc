/* shard/shard.h — reading inputs, UTF-8 validation, tokenization with byte
 * offsets, sentences, sections, and partitioning documents over ranks.
 *
 * A folio_doc_t owns all its memory; byte offsets (uint32_t) index the
 * document's validated text, so a document is limited to 4 GiB - 1 bytes
 * (larger ones are rejected with FOLIO_ERR_TOO_LARGE).
 */
#ifndef FOLIO_SHARD_H
#define FOLIO_SHARD_H

#include "../common/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A token: bytes [start, end) of the document text. */
typedef struct { uint32_t start, end; } folio_span_t;

typedef struct {
    uint32_t start, end;         /* bytes [start, end): trimmed sentence text */
    uint32_t tok_begin, tok_end; /* tokens [tok_begin, tok_end)              */
    uint32_t section;            /* index into doc->sections                 */
} folio_sentence_t;

typedef struct {
    uint32_t start, end;             /* bytes covered by the section          */
    uint32_t title_start, title_end; /* heading bytes; empty when untitled    */
    uint32_t sent_begin, sent_end;   /* sentences [sent_begin, sent_end)      */
    uint32_t level;                  /* 0 = preamble/untitled, 1 = top, ...   */
} folio_section_t;

typedef struct {
    char *id;        /* NUL-terminated; from JSONL "id" or the relative path   */
    char *title;     /* NUL-terminated, may be ""                              */
    char *text;      /* validated UTF-8, BOM stripped, NUL-terminated          */
    size_t len;      /* bytes of text (excluding the terminator)               */
    char *origin;    /* "path" or "path:line", for messages                    */
    uint8_t hash[16];/* folio_hash128 of text, set by folio_doc_analyze        */

    folio_span_t *tokens;      uint32_t n_tokens;
    uint64_t *term_hashes;     /* (n_tokens) folio_term_hash of each token     */
    uint64_t *stem_hashes;     /* (n_tokens) folio_stem_hash of each token     */
    folio_sentence_t *sents;   uint32_t n_sents;
    folio_section_t *sections; uint32_t n_sections;
} folio_doc_t;

/* ------------------------------------------------------------- validation */

/* Validates text as UTF-8 (no overlongs, no surrogates, <= U+10FFFF), rejects
 * NUL bytes and binary content.  On failure returns FOLIO_ERR_UTF8 /
 * FOLIO_ERR_NUL / FOLIO_ERR_BINARY and writes a reason naming the byte offset
 * into reason. */
folio_status_t folio_utf8_validate(const char *s, size_t len, char *reason, size_t reasonlen);

/* Length of a UTF-8 byte order mark at s (3 or 0).  The reader strips it. */
size_t folio_utf8_bom_len(const char *s, size_t len);

/* ------------------------------------------------------------- tokens
 * A token is a maximal run of word characters (ASCII letters and digits,
 * and every non-ASCII letter), keeping internal joiners that belong to a
 * word ("don't", "U.S.C", "3.5", "e-mail" rules are documented in
 * tokenize.c).  Tokens never overlap and are in text order.  *toks is
 * malloc'd (NULL when *n == 0) and owned by the caller, who free()s it. */
folio_status_t folio_tokenize(const char *text, size_t len, folio_span_t **toks, uint32_t *n);

/* A run of word characters longer than this is cut into tokens of at most
 * this many bytes (at code point boundaries), so one 100 MB "word" cannot
 * make a 100 MB term. */
#define FOLIO_TOKEN_MAX_BYTES 128u

/* A sentence never has more tokens than this: longer runs without sentence
 * punctuation are cut at the last ',', ';', ':' or line break (else hard). */
#define FOLIO_SENT_MAX_TOKENS 512u

/* Normalized form of a token (lowercased, ASCII case-folded; non-ASCII kept)
 * written into buf (NUL-terminated, truncated to cap-1). Returns its length. */
size_t folio_token_norm(const char *text, folio_span_t t, char *buf, size_t cap);

/* Hash of a token's normalized form: the key of the inverted index, the
 * document-frequency table and the hashed embedding. */
uint64_t folio_term_hash(const char *text, folio_span_t t);

/* Porter stemmer: exactly the variant that rouge_score applies (NLTK's
 * PorterStemmer as rouge_score configures it; see shard/porter.c for the
 * reference).  w is a lowercase word of n bytes; writes the stem into out
 * (capacity >= n + 1, NUL-terminated) and returns its length.  Words with
 * non-ASCII bytes are copied unchanged. */
size_t folio_porter_stem(const char *w, size_t n, char *out);

/* Hash of the Porter stem of a token's normalized form: the key of the
 * inverted index (BM25) and of the document-frequency table that gives the
 * encoder its IDF weights, so documents and queries agree. Words of at most
 * 3 bytes are not stemmed (rouge_score's rule). */
uint64_t folio_stem_hash(const char *text, folio_span_t t);

/* True for very common function words (English); used by retrieval and
 * summarization scoring, never by the encoder. */
bool folio_is_stopword(const char *norm, size_t len);

/* ------------------------------------------------------------- documents */

/* Fills hash, tokens, term_hashes, sentences and sections of a document
 * whose id/title/text/len are set.  Returns FOLIO_ERR_EMPTY when the text has
 * no tokens.
 *
 * What an analyzed document guarantees (tests/unit/test_shard_common.h checks
 * all of it on every dev document):
 *  - tokens are non-empty, disjoint, in order, at most FOLIO_TOKEN_MAX_BYTES;
 *  - sentences partition the tokens (each has >= 1 and at most
 *    FOLIO_SENT_MAX_TOKENS), in order, with disjoint byte spans trimmed of
 *    white space that cover their tokens plus attached punctuation;
 *  - sections partition the sentences and the bytes [0, len); section 0
 *    starts at byte 0; only an untitled preamble (section 0) has level 0; a
 *    titled section's heading is its first sentence;
 *  - the rules (line-oriented vs wrapped text, abbreviations, headings) are
 *    documented at the top of shard/segment.c.
 * Analyzing again replaces the previous analysis.  Thread-safe for distinct
 * documents (stems are memoized per thread, see tokenize.c).  Peak memory
 * is about text + 24 B a token (e.g. 4.8x the text for English prose). */
folio_status_t folio_doc_analyze(folio_doc_t *doc);

/* The cheaper part of folio_doc_analyze for passes that only count terms
 * (e.g. a document-frequency planning pass): hash, tokens, term_hashes and
 * stem_hashes; sents/sections stay NULL (n_sents = n_sections = 0).  Same
 * values as folio_doc_analyze; FOLIO_ERR_EMPTY when there are no tokens.
 * About a third less time than folio_doc_analyze (no sentence splitting). */
folio_status_t folio_doc_analyze_terms(folio_doc_t *doc);

/* Frees everything the document owns and zeroes it.  NULL-safe. */
void folio_doc_clear(folio_doc_t *doc);

/* ------------------------------------------------------------- reader
 * Streams documents out of a list of inputs: files (.txt/.md/anything
 * textual), .jsonl files ({"id","title","text"}; "contents" accepted for
 * "text"), and directories (recursive, sorted by name, hidden entries
 * skipped).  A bad input does not stop the stream: folio_reader_next returns
 * its status with doc->id/origin set and a reason, and the next call goes
 * on with the next document. */
typedef struct folio_reader folio_reader_t;

folio_status_t folio_reader_create(const char *const *inputs, int n_inputs, folio_reader_t **out);
void folio_reader_destroy(folio_reader_t **r);

/* Returns FOLIO_OK with a raw document (id, title, text, len, origin set; not
 * yet analyzed), FOLIO_EOF at the end, or an error status for a rejected
 * input (doc->id and doc->origin set when known, reason filled).  The caller
 * owns doc and must folio_doc_clear it.  doc must be zeroed (or cleared) on
 * entry.  reason does not repeat the origin: print "ORIGIN: REASON".  Ids of
 * JSONL lines without "id" are "FILE:LINE"; a numeric "id" is written as an
 * integer.  The rules (order, hidden entries, symlinks, memory) are at the
 * top of shard/reader.c. */
folio_status_t folio_reader_next(folio_reader_t *r, folio_doc_t *doc, char *reason, size_t reasonlen);

#ifdef __cplusplus
}
#endif
#endif /* FOLIO_SHARD_H */
