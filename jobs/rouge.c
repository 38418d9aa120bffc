/* jobs/rouge.c — ROUGE-1/2/Lsum F1 by the rules of Google's rouge_score
 * (0.1.2, use_stemmer=True), re-implemented in C:
 *
 *  tokenize: Python's str.lower(), every run of [^a-z0-9] to a space, split,
 *            Porter-stem tokens longer than 3 characters (folio_porter_stem,
 *            NLTK_EXTENSIONS), drop empty tokens.  Non-ASCII characters are
 *            separators, as after lower() they are not [a-z0-9]; the two code
 *            points whose lowercase is ASCII-led (U+0130 -> "i\u0307",
 *            U+212A KELVIN SIGN -> "k") give their ASCII letter.
 *  ROUGE-N:  clipped n-gram overlap counts; P = hits / max(|cand|,1),
 *            R = hits / max(|ref|,1), F = 2PR/(P+R).
 *  ROUGE-Lsum: both texts split on '\n' (empty lines dropped), summary-level
 *            union LCS per reference sentence against every candidate
 *            sentence, hits clipped by remaining token counts (as ROUGE 1.5.5
 *            and rouge_score do), using rouge_score's LCS backtrack (ties
 *            prefer moving up in the reference) so the union is identical.
 *
 * Tokens are compared by 64-bit hashes of their stemmed strings (a collision
 * between two different tokens is ~2^-64 per pair: negligible). */
#include "jobs.h"

#include <stdlib.h>
#include <string.h>

#include "../shard/shard.h"

#define ROUGE_SEED 0x52304755u

/* Appends one raw token (lowercase ASCII alnum) after stemming. */
static folio_status_t push_token(folio_rouge_tokens_t *t, const char *w, size_t n)
{
    if (n == 0) return FOLIO_OK;
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        uint64_t *h = realloc(t->hash, cap * sizeof *h);
        FOLIO_CHECK_ALLOC(h);
        t->hash = h;
        t->cap = cap;
    }
    char small[256];
    size_t sn = n;
    if (n <= 3) { /* rouge_score stems only tokens longer than 3 characters */
        t->hash[t->n++] = folio_hash64(w, n, ROUGE_SEED);
        return FOLIO_OK;
    }
    char *stem = n < sizeof small ? small : malloc(n + 1);
    FOLIO_CHECK_ALLOC(stem);
    sn = folio_porter_stem(w, n, stem);
    t->hash[t->n++] = folio_hash64(stem, sn, ROUGE_SEED);
    if (stem != small) free(stem);
    return FOLIO_OK;
}

folio_status_t folio_rouge_tokenize(const char *s, size_t len, folio_rouge_tokens_t *out)
{
    out->n = 0;
    char word[1024];
    size_t wn = 0;
    bool long_word = false; /* a token longer than the buffer: hashed unstemmed */
    folio_buf_t big = {0};
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = i < len ? (unsigned char)s[i] : ' ';
        char a = 0;
        size_t adv = 0;
        if (c >= 'A' && c <= 'Z') a = (char)(c - 'A' + 'a');
        else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) a = (char)c;
        else if (c == 0xC4 && i + 1 < len && (unsigned char)s[i + 1] == 0xB0) { a = 'i'; adv = 1; }
        else if (c == 0xE2 && i + 2 < len && (unsigned char)s[i + 1] == 0x84 &&
                 (unsigned char)s[i + 2] == 0xAA) { a = 'k'; adv = 2; }
        if (a) {
            if (!long_word && wn < sizeof word) word[wn++] = a;
            else {
                if (!long_word) {
                    long_word = true;
                    if (folio_buf_append(&big, word, wn) != FOLIO_OK) return FOLIO_ERR_NOMEM;
                }
                if (folio_buf_append(&big, &a, 1) != FOLIO_OK) return FOLIO_ERR_NOMEM;
            }
            i += adv;
            /* U+0130 lowercases to "i" + U+0307 (non-alnum): a separator follows */
            if (c == 0xC4) goto flush;
            continue;
        }
    flush:
        if (long_word) {
            folio_status_t st = push_token(out, big.data, big.len);
            big.len = 0;
            long_word = false;
            if (st != FOLIO_OK) { folio_buf_free(&big); return st; }
        } else if (wn) {
            FOLIO_TRY(push_token(out, word, wn));
        }
        wn = 0;
    }
    folio_buf_free(&big);
    return FOLIO_OK;
}

void folio_rouge_tokens_free(folio_rouge_tokens_t *t)
{
    if (!t) return;
    free(t->hash);
    memset(t, 0, sizeof *t);
}

size_t folio_rouge_cut_words(const char *s, size_t len, size_t max_words)
{
    /* Keep the text up to the end of the max_words-th whitespace-separated
     * word (Python's str.split() words), newlines included, so that a cut
     * summary still has its sentence lines for ROUGE-Lsum. */
#define ISWS(c) ((c) == ' ' || (c) == '\n' || (c) == '\t' || (c) == '\r' || (c) == '\v' || (c) == '\f')
    size_t words = 0, i = 0, end = 0;
    while (i < len) {
        while (i < len && ISWS(s[i])) i++;
        if (i >= len) break;
        if (words == max_words) return end;
        while (i < len && !ISWS(s[i])) i++;
        end = i;
        words++;
    }
#undef ISWS
    return len;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double fmeasure(double p, double r) { return p + r > 0 ? 2 * p * r / (p + r) : 0.0; }

/* n-grams (n = 1 or 2) of a token list, hashed and sorted: (count) */
static uint64_t *ngrams(const folio_rouge_tokens_t *t, int n, size_t *count)
{
    size_t m = t->n >= (size_t)n ? t->n - (size_t)n + 1 : 0;
    *count = m;
    uint64_t *g = malloc((m ? m : 1) * sizeof *g);
    if (!g) return NULL;
    for (size_t i = 0; i < m; i++) {
        uint64_t h = t->hash[i];
        for (int k = 1; k < n; k++) h = folio_hash64(&(uint64_t[2]){h, t->hash[i + (size_t)k]}, 16, 7);
        g[i] = h;
    }
    qsort(g, m, sizeof *g, cmp_u64);
    return g;
}

static folio_status_t rouge_n(const folio_rouge_tokens_t *ref, const folio_rouge_tokens_t *sys, int n,
                              folio_rouge_prf_t *out)
{
    size_t nr, ns;
    uint64_t *gr = ngrams(ref, n, &nr);
    uint64_t *gs = ngrams(sys, n, &ns);
    if (!gr || !gs) { free(gr); free(gs); return FOLIO_ERR_NOMEM; }
    /* clipped overlap = sum over n-grams of min(count_ref, count_sys):
     * a merge of the two sorted lists counts exactly that */
    size_t i = 0, j = 0, hits = 0;
    while (i < nr && j < ns) {
        if (gr[i] < gs[j]) i++;
        else if (gr[i] > gs[j]) j++;
        else { hits++; i++; j++; }
    }
    free(gr);
    free(gs);
    out->p = (double)hits / (double)(ns > 1 ? ns : 1);
    out->r = (double)hits / (double)(nr > 1 ? nr : 1);
    out->f = fmeasure(out->p, out->r);
    return FOLIO_OK;
}

/* Sentences of a text split on '\n', empty lines dropped, each tokenized. */
typedef struct { folio_rouge_tokens_t *s; size_t n; } sentlist_t;

static void sentlist_free(sentlist_t *l)
{
    for (size_t i = 0; i < l->n; i++) folio_rouge_tokens_free(&l->s[i]);
    free(l->s);
    l->s = NULL;
    l->n = 0;
}

static folio_status_t split_lines(const char *s, size_t len, sentlist_t *out)
{
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += s[i] == '\n';
    out->s = calloc(lines, sizeof *out->s);
    out->n = 0;
    FOLIO_CHECK_ALLOC(out->s);
    size_t b = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '\n') continue;
        if (i > b) { /* rouge_score drops only empty strings, then tokenizes */
            folio_status_t st = folio_rouge_tokenize(s + b, i - b, &out->s[out->n]);
            out->n++;
            if (st != FOLIO_OK) { sentlist_free(out); return st; }
        }
        b = i + 1;
    }
    return FOLIO_OK;
}

/* Reference-token indices of one LCS of ref and can, marked in mark[]
 * (rouge_score's _lcs_table + _backtrack_norec). tab: (|ref|+1)*(|can|+1). */
static void lcs_mark(const folio_rouge_tokens_t *ref, const folio_rouge_tokens_t *can, uint32_t *tab,
                     uint8_t *mark)
{
    size_t R = ref->n, C = can->n, W = C + 1;
    for (size_t j = 0; j <= C; j++) tab[j] = 0;
    for (size_t i = 1; i <= R; i++) {
        tab[i * W] = 0;
        for (size_t j = 1; j <= C; j++) {
            if (ref->hash[i - 1] == can->hash[j - 1]) tab[i * W + j] = tab[(i - 1) * W + j - 1] + 1;
            else {
                uint32_t a = tab[(i - 1) * W + j], b = tab[i * W + j - 1];
                tab[i * W + j] = a > b ? a : b;
            }
        }
    }
    size_t i = R, j = C;
    while (i > 0 && j > 0) {
        if (ref->hash[i - 1] == can->hash[j - 1]) { mark[i - 1] = 1; i--; j--; }
        else if (tab[i * W + j - 1] > tab[(i - 1) * W + j]) j--;
        else i--;
    }
}

/* Multiset of token hashes with decrementable counts: sorted keys + counts. */
typedef struct { uint64_t *key; int32_t *cnt; size_t n; } counter_t;

static folio_status_t counter_build(const sentlist_t *l, counter_t *c)
{
    size_t tot = 0;
    for (size_t i = 0; i < l->n; i++) tot += l->s[i].n;
    uint64_t *all = malloc((tot ? tot : 1) * sizeof *all);
    FOLIO_CHECK_ALLOC(all);
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++)
        for (size_t j = 0; j < l->s[i].n; j++) all[k++] = l->s[i].hash[j];
    qsort(all, tot, sizeof *all, cmp_u64);
    c->key = all;
    c->cnt = calloc(tot ? tot : 1, sizeof *c->cnt);
    if (!c->cnt) { free(all); return FOLIO_ERR_NOMEM; }
    size_t u = 0;
    for (size_t i = 0; i < tot; i++) {
        if (u > 0 && all[u - 1] == all[i]) c->cnt[u - 1]++;
        else { all[u] = all[i]; c->cnt[u] = 1; u++; }
    }
    c->n = u;
    return FOLIO_OK;
}

static int32_t *counter_at(counter_t *c, uint64_t key)
{
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c->key[mid] < key) lo = mid + 1;
        else hi = mid;
    }
    return lo < c->n && c->key[lo] == key ? &c->cnt[lo] : NULL;
}

static folio_status_t rouge_lsum(const char *ref, size_t rlen, const char *sys, size_t slen,
                                 folio_rouge_prf_t *out)
{
    memset(out, 0, sizeof *out);
    sentlist_t R = {0}, S = {0};
    counter_t cr = {0}, cs = {0};
    uint32_t *tab = NULL;
    uint8_t *mark = NULL;
    folio_status_t st = split_lines(ref, rlen, &R);
    if (st == FOLIO_OK) st = split_lines(sys, slen, &S);
    if (st != FOLIO_OK) goto done;
    size_t m = 0, n = 0, maxr = 0, maxc = 0;
    for (size_t i = 0; i < R.n; i++) { m += R.s[i].n; if (R.s[i].n > maxr) maxr = R.s[i].n; }
    for (size_t i = 0; i < S.n; i++) { n += S.s[i].n; if (S.s[i].n > maxc) maxc = S.s[i].n; }
    if (!m || !n) goto done;
    st = counter_build(&R, &cr);
    if (st == FOLIO_OK) st = counter_build(&S, &cs);
    if (st != FOLIO_OK) goto done;
    tab = malloc((maxr + 1) * (maxc + 1) * sizeof *tab);
    mark = malloc(maxr + 1);
    if (!tab || !mark) { st = FOLIO_ERR_NOMEM; goto done; }
    size_t hits = 0;
    for (size_t r = 0; r < R.n; r++) {
        const folio_rouge_tokens_t *rs = &R.s[r];
        memset(mark, 0, rs->n + 1);
        for (size_t c = 0; c < S.n; c++) lcs_mark(rs, &S.s[c], tab, mark);
        for (size_t i = 0; i < rs->n; i++) { /* union, in reference order */
            if (!mark[i]) continue;
            int32_t *a = counter_at(&cs, rs->hash[i]), *b = counter_at(&cr, rs->hash[i]);
            if (a && b && *a > 0 && *b > 0) { hits++; (*a)--; (*b)--; }
        }
    }
    out->r = (double)hits / (double)m;
    out->p = (double)hits / (double)n;
    out->f = fmeasure(out->p, out->r);
done:
    free(tab);
    free(mark);
    free(cr.key); free(cr.cnt);
    free(cs.key); free(cs.cnt);
    sentlist_free(&R);
    sentlist_free(&S);
    return st;
}

folio_status_t folio_rouge_score(const char *ref, size_t ref_len, const char *sys, size_t sys_len,
                                 folio_rouge_t *out)
{
    memset(out, 0, sizeof *out);
    folio_rouge_tokens_t tr = {0}, ts = {0};
    folio_status_t st = folio_rouge_tokenize(ref, ref_len, &tr);
    if (st == FOLIO_OK) st = folio_rouge_tokenize(sys, sys_len, &ts);
    if (st == FOLIO_OK) st = rouge_n(&tr, &ts, 1, &out->rouge1);
    if (st == FOLIO_OK) st = rouge_n(&tr, &ts, 2, &out->rouge2);
    folio_rouge_tokens_free(&tr);
    folio_rouge_tokens_free(&ts);
    if (st == FOLIO_OK) st = rouge_lsum(ref, ref_len, sys, sys_len, &out->rougeLsum);
    return st;
}
