/* tests/unit/test_shard_tokens.c — tokenizer rules, offsets round-trip on
 * random UTF-8 strings against an independent code-point reference,
 * normalization, term/stem hashes, stopwords. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "shard/shard.h"

/* ------------------------------------------------------------ reference
 * The documented rules, written again over decoded code points. */
typedef struct { uint32_t cp; size_t off, len; } rcp_t;

static size_t ref_decode(const unsigned char *s, size_t n, rcp_t *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t l = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        uint32_t cp = l == 1 ? c : l == 2 ? (c & 0x1F) : l == 3 ? (c & 0x0F) : (c & 0x07);
        for (size_t j = 1; j < l; j++) cp = (cp << 6) | (s[i + j] & 0x3F);
        out[k].cp = cp;
        out[k].off = i;
        out[k].len = l;
        k++;
        i += l;
    }
    out[k].off = n; /* sentinel offset */
    return k;
}

static bool in(uint32_t c, uint32_t a, uint32_t b) { return c >= a && c <= b; }
static bool r_alpha(uint32_t c) { return in(c, 'a', 'z') || in(c, 'A', 'Z'); }
static bool r_digit(uint32_t c) { return in(c, '0', '9'); }
static bool r_word(uint32_t c)
{
    if (c < 0x80) return r_alpha(c) || r_digit(c);
    if (c < 0xC0) return c == 0xAA || c == 0xB5 || c == 0xBA || c == 0xB2 || c == 0xB3 || c == 0xB9 || in(c, 0xBC, 0xBE);
    if (c == 0xD7 || c == 0xF7) return false;
    if (in(c, 0x2000, 0x206F) || in(c, 0x20A0, 0x20CF) || in(c, 0x2190, 0x2BFF) || in(c, 0x3000, 0x303F)) return false;
    if (in(c, 0x1F000, 0x1FAFF) || c == 0xFEFF) return false;
    return true; /* the random alphabet below uses no other excluded range */
}
static bool r_letter(uint32_t c) { return r_word(c) && !r_digit(c); }

static size_t ref_tokenize(const char *text, size_t n, folio_span_t *out)
{
    static rcp_t cps[1 << 14];
    size_t m = ref_decode((const unsigned char *)text, n, cps), k = 0;
    size_t i = 0;
    while (i < m) {
        if (!r_word(cps[i].cp)) { i++; continue; }
        size_t start = i, seg_start = i;
        for (;;) {
            while (i < m && r_word(cps[i].cp) && cps[i].off + cps[i].len - cps[start].off <= FOLIO_TOKEN_MAX_BYTES) i++;
            if (i >= m || r_word(cps[i].cp)) break; /* end, or cut at the size limit */
            uint32_t c = cps[i].cp, p = cps[i - 1].cp, nx = i + 1 < m ? cps[i + 1].cp : 0;
            bool room = i + 1 < m && cps[i + 1].off + cps[i + 1].len - cps[start].off <= FOLIO_TOKEN_MAX_BYTES;
            bool join = false;
            if ((c == '\'' || c == 0x2019) && r_letter(p) && i + 1 < m && r_letter(nx) && room) join = true;
            else if (c == '.' && r_digit(p) && r_digit(nx) && room) join = true;
            else if (c == '.' && i - seg_start == 1 && r_alpha(p) && r_alpha(nx) && room &&
                     (i + 2 >= m || (cps[i + 2].cp < 0x80 && !r_alpha(cps[i + 2].cp) && !r_digit(cps[i + 2].cp))))
                join = true;
            else if (c == ',' && i - seg_start <= 3 && i + 3 < m) {
                bool digits = true;
                for (size_t j = seg_start; j < i; j++) digits &= r_digit(cps[j].cp);
                for (size_t j = i + 1; j <= i + 3; j++) digits &= r_digit(cps[j].cp);
                bool after = i + 4 >= m || cps[i + 4].cp >= 0x80 || !(r_alpha(cps[i + 4].cp) || r_digit(cps[i + 4].cp));
                join = digits && after && cps[i + 4 < m ? i + 4 : m].off - cps[start].off <= FOLIO_TOKEN_MAX_BYTES;
            }
            if (!join) break;
            i++;
            seg_start = i;
        }
        out[k].start = (uint32_t)cps[start].off;
        out[k].end = (uint32_t)cps[i].off;
        k++;
    }
    return k;
}

/* ------------------------------------------------------------ helpers */

static char **toks_of(const char *s, uint32_t *n)
{
    folio_span_t *t;
    cr_assert_eq(folio_tokenize(s, strlen(s), &t, n), FOLIO_OK);
    char **out = calloc(*n + 1, sizeof *out);
    for (uint32_t i = 0; i < *n; i++) out[i] = strndup(s + t[i].start, t[i].end - t[i].start);
    free(t);
    return out;
}

static void expect_tokens(const char *s, const char *const *want)
{
    uint32_t n;
    char **got = toks_of(s, &n);
    size_t w = 0;
    while (want[w]) w++;
    for (uint32_t i = 0; i < n && i < w; i++)
        cr_assert_str_eq(got[i], want[i], "'%s': token %u is '%s', want '%s'", s, i, got[i], want[i]);
    cr_assert_eq(n, w, "'%s': %u tokens, want %zu", s, n, w);
    for (uint32_t i = 0; i < n; i++) free(got[i]);
    free(got);
}

#define TOKS(s, ...) expect_tokens(s, (const char *const[]){ __VA_ARGS__, NULL })

Test(shard_tokens, rules)
{
    TOKS("Don't stop, O'Neil can\xE2\x80\x99t.", "Don't", "stop", "O'Neil", "can\xE2\x80\x99t");
    TOKS("42 U.S.C. 1395dd and e.g. this, i.e. that", "42", "U.S.C", "1395dd", "and", "e.g", "this", "i.e", "that");
    TOKS("rates of 3.5% and 43.2, version 1.2.3.", "rates", "of", "3.5", "and", "43.2", "version", "1.2.3");
    TOKS("1,000,000 items (1,2) and 12,34", "1,000,000", "items", "1", "2", "and", "12", "34");
    TOKS("e-mail non-exclusive", "e", "mail", "non", "exclusive");
    TOKS("na\xC3\xAFve Stra\xC3\x9F" "e \xE4\xB8\xAD\xE6\x96\x87", "na\xC3\xAFve", "Stra\xC3\x9F" "e", "\xE4\xB8\xAD\xE6\x96\x87");
    TOKS("a\xE2\x80\x94" "b \xE2\x80\x9Cq\xE2\x80\x9D \xC2\xA7 101 \xC2\xB6 2", "a", "b", "q", "101", "2");
    TOKS("x\xC2\xA0y \xF0\x9F\x98\x80z", "x", "y", "z");
    TOKS("end. 'quoted' rock'n'roll", "end", "quoted", "rock'n'roll");
    TOKS("", NULL);
    TOKS("  ...  --- ", NULL);
    TOKS("www.example.com a.b.cd", "www", "example", "com", "a.b", "cd");
}

Test(shard_tokens, long_runs_are_cut)
{
    char s[400];
    memset(s, 'a', 300);
    s[300] = 0;
    folio_span_t *t;
    uint32_t n;
    cr_assert_eq(folio_tokenize(s, 300, &t, &n), FOLIO_OK);
    cr_assert_eq(n, 3);
    cr_assert_eq(t[0].end - t[0].start, FOLIO_TOKEN_MAX_BYTES);
    cr_assert_eq(t[1].start, t[0].end);
    cr_assert_eq(t[2].end, 300);
    free(t);
    /* a multibyte run is cut at code point boundaries */
    char m[400] = "";
    for (int i = 0; i < 100; i++) strcat(m, "\xC3\xA9"); /* é x100 = 200 bytes */
    cr_assert_eq(folio_tokenize(m, strlen(m), &t, &n), FOLIO_OK);
    cr_assert_eq(n, 2);
    cr_assert_eq(t[0].end % 2, 0);
    cr_assert_eq(t[0].end - t[0].start, 128);
    free(t);
}

Test(shard_tokens, random_round_trip_against_reference)
{
    static const char *const pieces[] = {
        "a", "b", "Z", "x", "7", "0", ".", ".", "'", "\xE2\x80\x99", ",", " ", " ", "\n", "-", "\xC3\xA9",
        "\xC3\x9F", "\xE4\xB8\xAD", "\xF0\x9F\x98\x80", "\xC2\xA0", "\xE2\x80\x94", "\xE2\x80\x9C", "\xC2\xA7",
        "(", ")", "e.g", "U.S.", "3.5", "1,000", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    };
    uint64_t seed = 99;
    static char buf[8192];
    static folio_span_t ref[8192];
    for (int iter = 0; iter < 3000; iter++) {
        size_t n = 0, want = 1 + folio_splitmix64(&seed) % 1500;
        while (n < want) {
            const char *p = pieces[folio_splitmix64(&seed) % (sizeof pieces / sizeof pieces[0])];
            size_t l = strlen(p);
            memcpy(buf + n, p, l);
            n += l;
        }
        buf[n] = 0;
        folio_span_t *t;
        uint32_t k;
        cr_assert_eq(folio_tokenize(buf, n, &t, &k), FOLIO_OK);
        size_t rk = ref_tokenize(buf, n, ref);
        for (uint32_t i = 0; i < k && i < rk; i++)
            cr_assert(t[i].start == ref[i].start && t[i].end == ref[i].end,
                      "iter %d token %u: [%u,%u) '%.*s' vs reference [%u,%u) '%.*s'", iter, i, t[i].start, t[i].end,
                      (int)(t[i].end - t[i].start), buf + t[i].start, ref[i].start, ref[i].end,
                      (int)(ref[i].end - ref[i].start), buf + ref[i].start);
        cr_assert_eq(k, rk, "iter %d: %u tokens vs reference %zu", iter, k, rk);
        /* round trip: the bytes between tokens hold no word character */
        size_t prev = 0;
        for (uint32_t i = 0; i <= k; i++) {
            size_t end = i < k ? t[i].start : n;
            rcp_t cps[4096];
            size_t m = ref_decode((const unsigned char *)buf + prev, end - prev, cps);
            for (size_t j = 0; j < m; j++)
                cr_assert(!r_word(cps[j].cp) || (i < k && end == prev && j == 0), "iter %d: word char left out at %zu", iter,
                          prev + cps[j].off);
            if (i < k) prev = t[i].end;
        }
        free(t);
    }
}

Test(shard_tokens, norm_and_hashes)
{
    const char *s = "Running RUNS runs ran Can\xE2\x80\x99t can't Licenses license";
    folio_span_t *t;
    uint32_t n;
    cr_assert_eq(folio_tokenize(s, strlen(s), &t, &n), FOLIO_OK);
    cr_assert_eq(n, 8);
    char buf[64];
    cr_assert_eq(folio_token_norm(s, t[0], buf, sizeof buf), 7);
    cr_assert_str_eq(buf, "running");
    folio_token_norm(s, t[4], buf, sizeof buf);
    cr_assert_str_eq(buf, "can't");
    cr_assert_eq(folio_token_norm(s, t[0], buf, 4), 3, "truncated to cap-1");
    cr_assert_str_eq(buf, "run");
    /* term: case-insensitive, exact otherwise */
    cr_assert_eq(folio_term_hash(s, t[1]), folio_term_hash(s, t[2]));
    cr_assert_neq(folio_term_hash(s, t[0]), folio_term_hash(s, t[2]));
    cr_assert_eq(folio_term_hash(s, t[4]), folio_term_hash(s, t[5]), "curly and straight apostrophes");
    /* stem: running/runs -> run; "ran" (3 bytes) unstemmed */
    cr_assert_eq(folio_stem_hash(s, t[0]), folio_stem_hash(s, t[2]));
    cr_assert_neq(folio_stem_hash(s, t[0]), folio_stem_hash(s, t[3]));
    cr_assert_eq(folio_stem_hash(s, t[6]), folio_stem_hash(s, t[7]));
    /* the stem hash of a word is the hash of its stem as a word */
    const char *u = "run";
    folio_span_t us = { 0, 3 };
    cr_assert_eq(folio_stem_hash(u, us), folio_stem_hash(s, t[0]));
    /* stem and term hashes are different key spaces */
    cr_assert_neq(folio_stem_hash(u, us), folio_term_hash(u, us));
    free(t);
}

Test(shard_tokens, stem_memo_consistent)
{
    /* Many distinct words, so memo slots are reused: the stem hash must not
     * depend on the order of calls, and two words must share a stem hash
     * exactly when Porter gives them the same stem. */
    enum { N = 30000 };
    static char w[N][24], st[N][32];
    static uint64_t h1[N];
    static const char *const suf[] = { "", "s", "ing", "ed", "ation", "ness", "ly" };
    uint64_t seed = 5;
    for (int i = 0; i < N; i += 2) {
        size_t n = 3 + folio_splitmix64(&seed) % 6;
        for (size_t j = 0; j < n; j++) w[i][j] = (char)('a' + folio_splitmix64(&seed) % 26);
        w[i][n] = 0;
        memcpy(w[i + 1], w[i], n + 1);
        strcat(w[i], suf[folio_splitmix64(&seed) % 7]);
        strcat(w[i + 1], suf[folio_splitmix64(&seed) % 7]);
    }
    for (int i = 0; i < N; i++) {
        size_t n = strlen(w[i]);
        if (n <= 3) strcpy(st[i], w[i]);
        else st[i][folio_porter_stem(w[i], n, st[i])] = 0;
        h1[i] = folio_stem_hash(w[i], (folio_span_t){ 0, (uint32_t)n });
    }
    for (int i = N - 1; i >= 0; i--)
        cr_assert_eq(folio_stem_hash(w[i], (folio_span_t){ 0, (uint32_t)strlen(w[i]) }), h1[i], "order changed %s", w[i]);
    int same = 0;
    for (int i = 0; i < N; i += 2) {
        bool eq = !strcmp(st[i], st[i + 1]);
        same += eq;
        cr_assert_eq(eq, h1[i] == h1[i + 1], "%s/%s stems %s/%s", w[i], w[i + 1], st[i], st[i + 1]);
    }
    cr_assert(same > N / 10, "the test should see shared stems (%d)", same);
}

Test(shard_tokens, stopwords)
{
    const char *yes[] = { "the", "and", "of", "shall", "would", "don't", "a", "yourselves" };
    const char *no[] = { "license", "software", "", "thee", "andx", "zzz", "patent" };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) cr_assert(folio_is_stopword(yes[i], strlen(yes[i])), "%s", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) cr_assert(!folio_is_stopword(no[i], strlen(no[i])), "%s", no[i]);
    cr_assert(folio_is_stopword("theory", 3), "prefix length respected");
}

Test(shard_tokens, arbitrary_bytes_stay_in_bounds)
{
    /* folio_tokenize also sees unvalidated text (questions typed by users):
     * on any bytes it must terminate with ordered, in-bounds tokens. */
    uint64_t seed = 77;
    unsigned char buf[600];
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = folio_splitmix64(&seed) % sizeof buf;
        for (size_t i = 0; i < n; i++) {
            uint64_t r = folio_splitmix64(&seed);
            buf[i] = (r & 3) ? (unsigned char)(0x80 + (r >> 8) % 0x80) : (unsigned char)(r >> 16);
        }
        folio_span_t *t;
        uint32_t k;
        cr_assert_eq(folio_tokenize((const char *)buf, n, &t, &k), FOLIO_OK);
        for (uint32_t i = 0; i < k; i++) {
            cr_assert(t[i].start < t[i].end && t[i].end <= n, "iter %d token %u [%u,%u) of %zu", iter, i, t[i].start,
                      t[i].end, n);
            if (i) cr_assert(t[i - 1].end <= t[i].start);
            (void)folio_term_hash((const char *)buf, t[i]);
            (void)folio_stem_hash((const char *)buf, t[i]);
        }
        free(t);
    }
}
