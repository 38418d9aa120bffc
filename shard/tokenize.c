/* shard/tokenize.c — tokens with byte offsets, their normalized forms and
 * hashes, and the stopword list.
 *
 * Token rules (every token is a byte span [start, end) of the text; tokens
 * never overlap and come in text order):
 *  - A token is a maximal run of word characters: ASCII letters and digits
 *    and every non-ASCII code point except spaces, punctuation and symbols
 *    (see shard_internal.h for the exact ranges), so "naïve", "Straße",
 *    "β-cell" parts and CJK runs are word characters.
 *  - A few joiners stay inside a token when word characters stand on both
 *    sides:
 *      '  and U+2019 ’  between two letters        don't, O'Neil, can’t
 *      .  between two digits                       3.5, 1.2.3, v1.2
 *      .  after a one-letter segment when the next
 *         segment is one letter too (abbreviations) U.S.C, e.g, i.e, a.m
 *      ,  thousands separators: 1-3 digits, then
 *         groups of exactly 3 digits                1,000,000
 *    The final "." of "U.S.C." or of a sentence is never part of a token.
 *  - "-" is NOT a joiner: "e-mail" and "non-exclusive" give two tokens.
 *    This matches how ROUGE and BM25 queries see words (rouge_score splits
 *    on every non-alphanumeric), and a hyphenated compound then matches
 *    queries for either part.
 *  - Everything else (punctuation, symbols, space) separates tokens and is
 *    never a token itself.
 *  - A token is at most FOLIO_TOKEN_MAX_BYTES bytes; a longer run is cut at
 *    a code point boundary and continues as the next token.
 *
 * Normalization: ASCII letters are lowercased, U+2019 ’ becomes "'", every
 * other byte is kept (no Unicode case folding: the dev and target corpora
 * are English, and a wrong fold would be worse than none).
 */
#include "shard_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define W_ (SHARD_C_UPPER | SHARD_C_LOWER | SHARD_C_DIGIT)

const unsigned char folio_shard_ascii_class[128] = {
    ['\t'] = SHARD_C_SPACE, ['\n'] = SHARD_C_SPACE, ['\v'] = SHARD_C_SPACE,
    ['\f'] = SHARD_C_SPACE, ['\r'] = SHARD_C_SPACE, [' '] = SHARD_C_SPACE,
    ['0' ... '9'] = SHARD_C_DIGIT,
    ['A' ... 'Z'] = SHARD_C_UPPER,
    ['a' ... 'z'] = SHARD_C_LOWER,
};

#define TERM_SEED 0x7465726d2d763031ull /* "term-v01" */
#define STEM_SEED 0x7374656d2d763031ull /* "stem-v01" */

static inline bool ascii_letter(unsigned char c)
{
    return c < 0x80 && (folio_shard_ascii_class[c] & (SHARD_C_UPPER | SHARD_C_LOWER));
}
static inline bool ascii_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static inline bool ascii_alnum(unsigned char c) { return c < 0x80 && (folio_shard_ascii_class[c] & W_); }

/* Kind of the word character at s[i]: 0 = not a word char, 1 = letter
 * (ASCII or non-ASCII), 2 = digit.  *sz = its byte length. */
static inline int word_kind(const unsigned char *s, size_t len, size_t i, size_t *sz)
{
    unsigned char c = s[i];
    if (c < 0x80) {
        *sz = 1;
        unsigned char k = folio_shard_ascii_class[c];
        return (k & SHARD_C_DIGIT) ? 2 : (k & (SHARD_C_UPPER | SHARD_C_LOWER)) ? 1 : 0;
    }
    uint32_t cp = shard_decode(s, len, i, sz);
    return shard_is_word_cp_nonascii(cp) ? 1 : 0;
}

static folio_status_t push_token(folio_span_t **arr, size_t *n, size_t *cap, size_t start, size_t end)
{
    if (*n == *cap) {
        size_t nc = *cap + *cap / 2 + 16;
        if (nc > UINT32_MAX) return FOLIO_ERR_TOO_LARGE;
        folio_span_t *p = realloc(*arr, nc * sizeof **arr);
        FOLIO_CHECK_ALLOC(p);
        *arr = p;
        *cap = nc;
    }
    (*arr)[*n].start = (uint32_t)start;
    (*arr)[*n].end = (uint32_t)end;
    (*n)++;
    return FOLIO_OK;
}

folio_status_t folio_tokenize(const char *text, size_t len, folio_span_t **toks, uint32_t *n_out)
{
    *toks = NULL;
    *n_out = 0;
    if (len >= UINT32_MAX) return FOLIO_ERR_TOO_LARGE;
    const unsigned char *s = (const unsigned char *)text;
    /* English averages ~5.5 bytes per token with its space: one realloc at
     * most for ordinary text. */
    size_t cap = len / 5 + 16, n = 0;
    folio_span_t *arr = malloc(cap * sizeof *arr);
    FOLIO_CHECK_ALLOC(arr);
    folio_status_t st = FOLIO_OK;

    size_t i = 0;
    while (i < len) {
        size_t sz;
        /* skip separators; the ASCII case is a table lookup */
        unsigned char c = s[i];
        if (c < 0x80) {
            if (!(folio_shard_ascii_class[c] & W_)) { i++; continue; }
        } else if (!word_kind(s, len, i, &sz)) {
            i += sz;
            continue;
        }
        size_t start = i, seg_start = i; /* the segment: word chars since start or the last joiner */
        size_t lim = len - start > FOLIO_TOKEN_MAX_BYTES ? start + FOLIO_TOKEN_MAX_BYTES : len;
        for (;;) {
            /* a run of word characters; ASCII letters and digits on the fast path */
            for (;;) {
                while (i < lim && s[i] < 0x80 && (folio_shard_ascii_class[s[i]] & W_)) i++;
                if (i >= len) break;
                c = s[i];
                if (c < 0x80) {
                    if (folio_shard_ascii_class[c] & W_) goto emit; /* i == lim: cut a giant run */
                    break;
                }
                if (!word_kind(s, len, i, &sz)) break;
                if (i + sz - start > FOLIO_TOKEN_MAX_BYTES) goto emit;
                i += sz;
            }
            if (i >= len) break;
            /* the segment before i, for the joiner rules */
            int prev = ascii_digit(s[i - 1]) ? 2 : 1; /* a non-ASCII word char counts as a letter */
            size_t seg = i - seg_start;
            bool seg_letter1 = seg == 1 && ascii_letter(s[seg_start]);
            /* a joiner with word characters on both sides? */
            c = s[i];
            size_t jsz = 0;
            if (c == '\'' && prev == 1) jsz = 1;
            else if (c == 0xE2 && i + 2 < len && s[i + 1] == 0x80 && s[i + 2] == 0x99 && prev == 1) jsz = 3;
            if (jsz) {
                size_t nsz;
                if (i + jsz < len && word_kind(s, len, i + jsz, &nsz) == 1 &&
                    i + jsz + nsz - start <= FOLIO_TOKEN_MAX_BYTES) {
                    i += jsz;
                    seg_start = i;
                    continue;
                }
                break;
            }
            if (c == '.' && i + 1 < len && i + 2 - start <= FOLIO_TOKEN_MAX_BYTES) {
                unsigned char d = s[i + 1];
                bool join = false;
                if (prev == 2 && ascii_digit(d)) join = true;                     /* 3.5 */
                else if (seg_letter1 && ascii_letter(d) &&
                         (i + 2 >= len || !ascii_alnum(s[i + 2])) && (i + 2 >= len || s[i + 2] < 0x80))
                    join = true;                                                 /* U.S.C */
                if (join) {
                    i += 1;
                    seg_start = i;
                    continue;
                }
                break;
            }
            if (c == ',' && prev == 2 && seg >= 1 && seg <= 3 && i + 3 < len &&
                ascii_digit(s[i + 1]) && ascii_digit(s[i + 2]) && ascii_digit(s[i + 3]) &&
                (i + 4 >= len || !ascii_alnum(s[i + 4])) && i + 4 - start <= FOLIO_TOKEN_MAX_BYTES) {
                bool digits = true;
                for (size_t k = seg_start; k < i; k++) digits = digits && ascii_digit(s[k]);
                if (digits) {
                    i += 1;                                                      /* 1,000 */
                    seg_start = i;
                    continue;
                }
            }
            break;
        }
    emit:
        st = push_token(&arr, &n, &cap, start, i);
        if (st != FOLIO_OK) { free(arr); return st; }
    }
    if (n == 0) {
        free(arr);
        arr = NULL;
    } else if (n < cap) {
        folio_span_t *p = realloc(arr, n * sizeof *arr); /* give back the slack */
        if (p) arr = p;
    }
    *toks = arr;
    *n_out = (uint32_t)n;
    return FOLIO_OK;
}

size_t folio_token_norm(const char *text, folio_span_t t, char *buf, size_t cap)
{
    if (cap == 0) return 0;
    const unsigned char *s = (const unsigned char *)text;
    size_t o = 0;
    for (uint32_t i = t.start; i < t.end && o + 1 < cap; i++) {
        unsigned char c = s[i];
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c + 32);
        else if (c == 0xE2 && i + 2 < t.end && s[i + 1] == 0x80 && s[i + 2] == 0x99) { c = '\''; i += 2; }
        buf[o++] = (char)c;
    }
    buf[o] = 0;
    return o;
}

/* Norm buffer: tokens from folio_tokenize are at most FOLIO_TOKEN_MAX_BYTES;
 * a caller's longer span is hashed on its first 511 normalized bytes. */
#define NORM_CAP 512

uint64_t folio_term_hash(const char *text, folio_span_t t)
{
    char buf[NORM_CAP];
    size_t n = folio_token_norm(text, t, buf, sizeof buf);
    return folio_hash64(buf, n, TERM_SEED);
}

/* Stem hash of an already normalized word. */
static uint64_t stem_hash_norm(const char *norm, size_t n)
{
    if (n <= 3) return folio_hash64(norm, n, STEM_SEED);
    char out[NORM_CAP + 8];
    size_t m = folio_porter_stem(norm, n, out);
    return folio_hash64(out, m, STEM_SEED);
}

/* Stems are memoized per thread in a direct-mapped table keyed by the term
 * hash: Porter stemming costs ~400 ns a word, a hash ~5 ns, and a few
 * thousand words make most of any text, so with the memo stemming leaves
 * the ingest path (and the per-token folio_stem_hash calls of the jobs).
 * The memo is a pure cache — same results with or without it — allocated
 * on a thread's first use (STEM_CACHE_SLOTS * 16 bytes) and freed when the
 * thread exits.  If the allocation fails, stems are computed every time.
 * A 64-bit term-hash collision (~2^-64 a pair) would alias two words' stems,
 * the same risk every term-hash key in folio already takes. */
#define STEM_CACHE_BITS 15
#define STEM_CACHE_SLOTS ((size_t)1 << STEM_CACHE_BITS)
typedef struct { uint64_t term, stem; } stem_slot_t;
static _Thread_local stem_slot_t *stem_memo;
/* The memo is freed when its thread exits, through a pthread key whose only
 * job is that destructor (created once per process, never changed). */
static pthread_once_t stem_memo_once = PTHREAD_ONCE_INIT;
static pthread_key_t stem_memo_key;
static bool stem_memo_key_ok;
static void stem_memo_free(void *p) { free(p); }
static void stem_memo_key_init(void) { stem_memo_key_ok = pthread_key_create(&stem_memo_key, stem_memo_free) == 0; }

static stem_slot_t *stem_memo_get(void)
{
    if (stem_memo) return stem_memo;
    pthread_once(&stem_memo_once, stem_memo_key_init);
    if (!stem_memo_key_ok) return NULL; /* no way to free it: go without */
    stem_memo = calloc(STEM_CACHE_SLOTS, sizeof *stem_memo);
    if (stem_memo && pthread_setspecific(stem_memo_key, stem_memo) != 0) {
        free(stem_memo);
        stem_memo = NULL;
    }
    return stem_memo;
}

static inline uint64_t stem_hash_cached(const char *norm, size_t n, uint64_t term)
{
    stem_slot_t *memo = stem_memo_get();
    if (!memo) return stem_hash_norm(norm, n);
    stem_slot_t *e = &memo[term >> (64 - STEM_CACHE_BITS)];
    /* term hash 0 marks an empty slot; a real 0 hash just always misses */
    if (e->term == term && term != 0) return e->stem;
    uint64_t h = stem_hash_norm(norm, n);
    e->term = term;
    e->stem = h;
    return h;
}

uint64_t folio_stem_hash(const char *text, folio_span_t t)
{
    char buf[NORM_CAP];
    size_t n = folio_token_norm(text, t, buf, sizeof buf);
    return stem_hash_cached(buf, n, folio_hash64(buf, n, TERM_SEED));
}

/* Term and stem hashes of tokens[0..n) (used by folio_doc_analyze).  A
 * long document's tokens are hashed by the calling thread's OpenMP team
 * (each thread with its own stem memo; the hashes do not depend on it);
 * inside an active parallel region this runs on the calling thread alone. */
folio_status_t folio_shard_hash_tokens(const char *text, const folio_span_t *toks, uint32_t n,
                                       uint64_t *term, uint64_t *stem)
{
#pragma omp parallel for schedule(static, 4096) if (n >= (1u << 16))
    for (uint32_t i = 0; i < n; i++) {
        char buf[NORM_CAP];
        size_t m = folio_token_norm(text, toks[i], buf, sizeof buf);
        uint64_t h = folio_hash64(buf, m, TERM_SEED);
        term[i] = h;
        stem[i] = stem_hash_cached(buf, m, h);
    }
    return FOLIO_OK;
}

/* English function words, sorted (strcmp order) for binary search. */
static const char *const STOPWORDS[] = {
    "a", "about", "above", "after", "again", "against", "all", "also", "am", "among", "an", "and",
    "any", "are", "aren't", "as", "at", "be", "because", "been", "before", "being", "below",
    "between", "both", "but", "by", "can", "can't", "cannot", "could", "couldn't", "did", "didn't",
    "do", "does", "doesn't", "doing", "don't", "down", "during", "each", "either", "etc", "few",
    "for", "from", "further", "had", "hadn't", "has", "hasn't", "have", "haven't", "having", "he",
    "her", "here", "hers", "herself", "him", "himself", "his", "how", "however", "i", "if", "in",
    "into", "is", "isn't", "it", "it's", "its", "itself", "just", "may", "me", "might", "more",
    "most", "must", "my", "myself", "neither", "no", "nor", "not", "of", "off", "on", "once",
    "only", "or", "other", "ought", "our", "ours", "ourselves", "out", "over", "own", "per", "same",
    "shall", "she", "should", "shouldn't", "so", "some", "such", "than", "that", "the", "their",
    "theirs", "them", "themselves", "then", "there", "thereby", "therefore", "these", "they",
    "this", "those", "through", "thus", "to", "too", "under", "until", "up", "upon", "us", "very",
    "via", "was", "wasn't", "we", "were", "weren't", "what", "when", "where", "whereas", "whether",
    "which", "while", "who", "whom", "whose", "why", "will", "with", "within", "without", "won't",
    "would", "wouldn't", "yet", "you", "your", "yours", "yourself", "yourselves",
};

bool folio_is_stopword(const char *norm, size_t len)
{
    if (len == 0 || len > 12) return false;
    char w[16];
    memcpy(w, norm, len);
    w[len] = 0;
    size_t lo = 0, hi = sizeof STOPWORDS / sizeof STOPWORDS[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(w, STOPWORDS[mid]);
        if (c == 0) return true;
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return false;
}
