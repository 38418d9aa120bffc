/* jobs/jobs.h — summarize, ask, evaluation (ROUGE, QA hit@k) over documents.
 *
 * The algorithms work on a storage-independent folio_doc_view_t, which
 * borrows the arrays of either an analyzed folio_doc_t (evaluation in memory)
 * or a folio_stored_doc_t read from the store (the CLI).  Nothing in a view
 * is owned by it: it stays valid as long as the document it was made from.
 *
 * Memory: every function that returns an array (*out) mallocs it; the caller
 * frees it with free().  Handles (folio_query_t, folio_index_t) are created
 * with x_create and freed with x_destroy (NULL-safe, nulls the pointer).
 */
#ifndef FOLIO_JOBS_H
#define FOLIO_JOBS_H

#include <mpi.h>

#include "../common/common.h"
#include "../shard/shard.h"
#include "../store/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ================================================================ ROUGE
 * rouge_score 0.1.2 rules with use_stemmer=True (see jobs/rouge.c). */
typedef struct { double p, r, f; } folio_rouge_prf_t;   /* in [0, 1] */
typedef struct { folio_rouge_prf_t rouge1, rouge2, rougeLsum; } folio_rouge_t;

/* Token list of rouge_score's tokenizer as 64-bit hashes of the stemmed
 * tokens.  Zero-initialize; reusable; free with folio_rouge_tokens_free. */
typedef struct { uint64_t *hash; size_t n, cap; } folio_rouge_tokens_t;
folio_status_t folio_rouge_tokenize(const char *s, size_t len, folio_rouge_tokens_t *out);
void folio_rouge_tokens_free(folio_rouge_tokens_t *t);

/* Byte length of the prefix of s that holds its first max_words
 * whitespace-separated words (Python str.split() words), keeping newlines
 * between them: "the summary cut to N words".  len when s has fewer. */
size_t folio_rouge_cut_words(const char *s, size_t len, size_t max_words);

/* ROUGE-1, ROUGE-2 and ROUGE-Lsum of a system text against a reference.
 * Lines ('\n') are sentences for ROUGE-Lsum.  No cut is applied here. */
folio_status_t folio_rouge_score(const char *ref, size_t ref_len, const char *sys, size_t sys_len,
                                 folio_rouge_t *out);

/* ================================================================ doc view */
typedef struct {
    const char *id;                 /* NUL-terminated                           */
    const char *text; size_t len;   /* original text                            */
    const folio_sentence_t *sents; uint32_t n_sents;
    const folio_section_t *sections; uint32_t n_sections;
    /* Tokens and their stem hashes: NULL when the source has none (stored
     * docs); folio_doc_feats_create then re-tokenizes text with
     * folio_tokenize, which gives the token indexes the sentences refer to. */
    const folio_span_t *tokens; const uint64_t *stem_hashes; uint32_t n_tokens;
    uint32_t d;                     /* width of the vectors below, 0 = none     */
    const float *sent_vecs;         /* (n_sents, d) contextual sentence vectors */
    const float *section_vecs;      /* (n_sections, d)                          */
    const float *doc_vec;           /* (d)                                      */
    const float *salience;          /* (n_sents) attention-derived salience     */
} folio_doc_view_t;

void folio_doc_view_from_doc(const folio_doc_t *doc, folio_doc_view_t *v);
void folio_doc_view_from_stored(const folio_stored_doc_t *doc, folio_doc_view_t *v);

/* Per-document lexical features shared by summarize and ask: for every
 * sentence its index terms (stem hashes of non-stopword tokens), term
 * frequencies, whitespace word count, and in-document sentence frequencies.
 * Built once per document (O(n_tokens)); the handle may point into the
 * view's token arrays, so destroy it before the view's source goes away. */
typedef struct folio_doc_feats folio_doc_feats_t;
folio_status_t folio_doc_feats_create(const folio_doc_view_t *v, folio_doc_feats_t **out);
void folio_doc_feats_destroy(folio_doc_feats_t **f);
/* Whitespace-separated words of sentence i (the unit of --words budgets). */
uint32_t folio_doc_feats_words(const folio_doc_feats_t *f, uint32_t sent);

/* ================================================================ summarize */
typedef struct {
    uint32_t max_words;    /* budget in whitespace words (0 = none)              */
    uint32_t max_sents;    /* budget in sentences (0 = none); at least one of the
                              two must be set                                      */
    /* Weights of the sentence score (see jobs/summarize.c): */
    float w_centroid;      /* TF-IDF cosine to the document centroid              */
    float w_central;       /* content density: idf of recurring terms per token   */
    float w_position;      /* position prior (start of doc and of sections)       */
    float w_salience;      /* attention-derived salience (when stored)            */
    float w_dense;         /* similarity to section/doc summary vectors            */
    float mmr_lambda;      /* MMR trade-off: relevance vs redundancy, in [0, 1]   */
    uint32_t min_tokens;   /* sentences with fewer index terms are not chosen     */
    bool section_cover;    /* give every major section a voice when budget allows */
    float pos_tau;         /* position prior 1 / (1 + sentence / pos_tau)         */
} folio_summarize_cfg_t;

/* Defaults (the tuned method of bench/RESULTS.md); budget 200 words. */
void folio_summarize_cfg_default(folio_summarize_cfg_t *cfg);

typedef struct {
    uint32_t index;        /* sentence index in the document                     */
    uint32_t start, end;   /* byte offsets of the sentence in the original text */
    float score;           /* the sentence's relevance score                     */
} folio_pick_t;

/* Extractive summary of a document under the cfg budget: whole sentences in
 * document order, never more than max_words whitespace words in total nor
 * more than max_sents sentences (a budget smaller than every sentence gives
 * an empty summary rather than a broken sentence).  *out malloc'd (free()). */
folio_status_t folio_summarize(const folio_doc_view_t *v, const folio_doc_feats_t *f,
                               const folio_summarize_cfg_t *cfg, folio_pick_t **out, uint32_t *n);

/* ================================================================ ask */
typedef enum { FOLIO_ASK_FOLIO = 0, FOLIO_ASK_BM25 = 1 } folio_ask_method_t;

/* A parsed question: its index terms (stem hashes, stopwords removed unless
 * nothing else is left), with counts.  qvec: optional question vector of
 * width d from the encoder (NULL = lexical only). */
typedef struct folio_query folio_query_t;
enum { FOLIO_QUERY_MAX_BYTES = 65536 };
/* FOLIO_ERR_TOO_LARGE for a question longer than FOLIO_QUERY_MAX_BYTES. */
folio_status_t folio_query_create(const char *question, size_t len, folio_query_t **out);
void folio_query_destroy(folio_query_t **q);
uint32_t folio_query_n_terms(const folio_query_t *q);
/* Encodes the question as ingest encodes documents' tokens: the hashed
 * embedding (attn's folio_embed, FOLIO_EMBED_SEED) weighted by the store's
 * IDF, mean-pooled and normalized to width d (the stored vectors' width);
 * sets it with folio_query_set_vec.  d == 0: nothing to do. */
folio_status_t folio_query_encode(folio_query_t *q, folio_store_t *s, uint32_t d);
/* Sets the dense question vector (copied; d floats). */
folio_status_t folio_query_set_vec(folio_query_t *q, const float *vec, uint32_t d);

typedef struct {
    uint32_t doc;          /* caller's document index (0 for single-doc ask)      */
    uint32_t sent;         /* first sentence of the span                          */
    uint32_t start, end;   /* byte offsets into the document's original text      */
    float score;
} folio_answer_t;

typedef struct {
    folio_ask_method_t method;
    float k1, b;           /* BM25 (defaults 1.2, 0.75)                            */
    float w_tie;           /* dense cosine added to the lexical score (tie-breaker) */
    float w_doc;           /* store-wide ask: share of the document's BM25 (vs the
                              sentence's own store-idf match) in an answer's score */
    float k1_fused;        /* k1 of the lexical ranking inside the fused method (0) */
    float w_dense;         /* weight of dense similarity in the fusion              */
    float w_context;       /* weight of the previous sentence's BM25 (context)      */
    float w_context_next;  /* weight of the next sentence's BM25                    */
    uint32_t rrf_k;        /* reciprocal rank fusion constant (60)                  */
    float w_section;       /* share of the section title's BM25 given to its sentences */
    float w_type;          /* bonus for numbers when the question asks a quantity   */
    float w_ctx_rank;      /* weight of the context ranking in the fusion           */
    float w_par;           /* weight of the rest of the paragraph's BM25 (context)  */
    float w_vec;           /* weight of the dense ranking (question vector vs the
                              contextual sentence vectors), among sentences with
                              some lexical or context evidence                  */
} folio_ask_cfg_t;
void folio_ask_cfg_default(folio_ask_cfg_t *cfg);

/* Ranks the sentences of one document for the question; writes up to top_k
 * answers (best first) to *out (malloc'd).  Answers are whole sentences (a
 * span never exceeds its sentence).  A question with no index term known to
 * the document gives *n = 0. */
folio_status_t folio_ask_doc(const folio_doc_view_t *v, const folio_doc_feats_t *f, const folio_query_t *q,
                             const folio_ask_cfg_t *cfg, uint32_t top_k, folio_answer_t **out, uint32_t *n);

/* Across a store: BM25 over the stored postings (doc level) picks candidate
 * documents, then folio_ask_doc runs on those only; answers of all
 * candidates merged by score: w_doc x the document's BM25 relative to the
 * best document + (1 - w_doc) x the share of the question's store idf that
 * the sentence itself contains (+ a small in-document rank term).  s gives the totals
 * (N, avgdl) of BM25; r is a reader of s.  answers' doc is the docnum; ids come from
 * folio_store_get_head_by_num.  max_docs: candidates examined (0 = 20). */
folio_status_t folio_ask_store(folio_store_t *s, folio_store_reader_t *r, const folio_query_t *q, const folio_ask_cfg_t *cfg,
                               uint32_t top_k, uint32_t max_docs, folio_answer_t **out, uint32_t *n);

/* ================================================================ QA metric */
/* design.md's hit rule: the union of spans[0..k) (each clipped to its first
 * 1,000 bytes) covers at least half of the bytes of some occurrence of some
 * gold answer in text.  Returns the 1-based rank at which the union first
 * hits (0 = never within n spans). */
uint32_t folio_qa_first_hit(const char *text, size_t len, const char *const *golds, const size_t *gold_lens,
                            uint32_t n_golds, const folio_answer_t *spans, uint32_t n_spans);

/* ================================================================ eval */
typedef struct {
    double rouge1, rouge2, rougeLsum;   /* mean F1 x 100 */
    uint64_t docs, from_store;          /* rows scored; of them read from the store */
    double seconds_jobs;                /* time spent in analysis + summarize */
} folio_eval_sum_t;

typedef struct {
    double hit1, hit5, hit10, mrr10;    /* x 100 */
    uint64_t questions, docs, from_store;
    double seconds_jobs;
} folio_eval_qa_t;

/* Runs summarize on every row of data ({"id","title","text","summary"}),
 * each summary (sentences joined by newlines) cut to cut_words words (0 =
 * uncut) and scored against the uncut reference.  s/rd (may be NULL): a
 * store holding the rows and a reader of it — the stored document of the
 * row's id (or, for a row ingest recorded as a duplicate, of the id holding
 * the same content) is used, else the row is analyzed in memory.  details (may be NULL): one JSON line
 * per row {"id","summary","rouge1","rouge2","rougeLsum"}. */
folio_status_t folio_eval_summarize(const char *data, folio_store_t *s, folio_store_reader_t *rd, const folio_summarize_cfg_t *cfg,
                                    uint32_t cut_words, FILE *details, folio_eval_sum_t *res);

/* Runs ask on every question of data ({"id","title","text","questions":
 * [{"question","answers":[...]}]}), within its own document.  details: one
 * JSON line per question {"id":"DOC#i","question","answers":[{"start","end"}..
 * top_k in rank order],"hit_rank"}. */
folio_status_t folio_eval_qa(const char *data, folio_store_t *s, folio_store_reader_t *rd, const folio_ask_cfg_t *cfg, uint32_t top_k,
                             FILE *details, folio_eval_qa_t *res);

/* ================================================================ batch */
/* Summarizes every document of the store at db with cfg, ranks of comm
 * splitting the documents (doc i of the id order goes to rank i % size);
 * rank 0 gathers, writes each summary with folio_store_put_summary and, when
 * jsonl / json_out are non-NULL, one JSON line per doc in id order to each
 * (rank 0's; others pass NULL).  Every rank of comm must call it; all return
 * rank 0's status.  *n_docs (rank 0) = documents summarized. */
folio_status_t folio_summarize_all(const char *db, const folio_summarize_cfg_t *cfg, MPI_Comm comm,
                                   FILE *jsonl, FILE *json_out, uint64_t *n_docs);

/* One summary as design.md's JSON object: {"doc":ID,"sentences":[...]} */
folio_status_t folio_summary_json(const folio_doc_view_t *v, const folio_pick_t *p, uint32_t n,
                                  folio_buf_t *out);

#ifdef __cplusplus
}
#endif
#endif /* FOLIO_JOBS_H */
