/* tests/unit/test_shard_utf8.c — strict UTF-8 validation, NUL and binary
 * detection, BOM: every invalid class with its offset, valid extremes, and
 * random strings against a plain reference decoder. */
#include <criterion/criterion.h>
#include <string.h>

#include "shard/shard.h"

static folio_status_t val(const char *s, size_t n, char *why)
{
    return folio_utf8_validate(s, n, why, 200);
}

Test(shard_utf8, valid_extremes)
{
    char why[200];
    const char *ok[] = {
        "",
        "plain ASCII text\n",
        "\xC2\x80 \xDF\xBF",             /* U+0080, U+07FF */
        "\xE0\xA0\x80 \xEF\xBF\xBF",     /* U+0800, U+FFFF */
        "\xED\x9F\xBF \xEE\x80\x80",     /* U+D7FF, U+E000 around the surrogates */
        "\xF0\x90\x80\x80 \xF4\x8F\xBF\xBF", /* U+10000, U+10FFFF */
        "na\xC3\xAFve \xE2\x80\x9Cquotes\xE2\x80\x9D \xF0\x9F\x98\x80",
        "tab\tand\r\nform\ffeed and ESC \x1B[0m",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        cr_assert_eq(val(ok[i], strlen(ok[i]), why), FOLIO_OK, "case %zu: %s", i, why);
}

typedef struct { const char *s; size_t n; size_t off; const char *word; } bad_t;

Test(shard_utf8, each_invalid_class_with_offset)
{
    const bad_t bad[] = {
        { "ab\xC0\x80", 4, 2, "overlong" },          /* NUL as 2 bytes */
        { "ab\xC1\xBF", 4, 2, "overlong" },
        { "\xE0\x80\x80", 3, 0, "overlong" },
        { "xyz\xE0\x9F\xBF", 6, 3, "overlong" },     /* U+07FF in 3 bytes */
        { "\xF0\x80\x80\x80", 4, 0, "overlong" },
        { "\xF0\x8F\xBF\xBF", 4, 0, "overlong" },    /* U+FFFF in 4 bytes */
        { "a\xED\xA0\x80", 4, 1, "surrogate" },      /* U+D800 */
        { "a\xED\xBF\xBF", 4, 1, "surrogate" },      /* U+DFFF */
        { "\xF4\x90\x80\x80", 4, 0, "above U+10FFFF" },
        { "ok \xF5\x80\x80\x80", 7, 3, "above U+10FFFF" },
        { "ok \xFF", 4, 3, "above U+10FFFF" },
        { "abc\xE2\x82", 5, 3, "truncated" },        /* cut by the end */
        { "abc\xF0\x9F\x98", 6, 3, "truncated" },
        { "abc\xE2\x82" "A", 6, 3, "truncated" },    /* cut by an ASCII byte */
        { "\xC3 x", 3, 0, "truncated" },
        { "abc\x80", 4, 3, "continuation" },         /* stray continuation */
        { "\xBF", 1, 0, "continuation" },
    };
    char why[200];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        folio_status_t st = val(bad[i].s, bad[i].n, why);
        cr_assert_eq(st, FOLIO_ERR_UTF8, "case %zu: status %s", i, folio_status_str(st));
        char at[64];
        snprintf(at, sizeof at, "at byte %zu:", bad[i].off);
        cr_assert(strstr(why, at), "case %zu: reason '%s' lacks '%s'", i, why, at);
        cr_assert(strstr(why, bad[i].word), "case %zu: reason '%s' lacks '%s'", i, why, bad[i].word);
    }
}

Test(shard_utf8, nul_and_binary)
{
    char why[200];
    /* one NUL in text: a NUL error at its offset */
    char t[400];
    memset(t, 'a', sizeof t);
    t[250] = 0;
    cr_assert_eq(val(t, sizeof t, why), FOLIO_ERR_NUL);
    cr_assert(strstr(why, "byte 250"), "%s", why);
    /* an ELF-like header: binary */
    unsigned char elf[512] = { 0x7F, 'E', 'L', 'F', 2, 1, 1, 0 };
    for (size_t i = 64; i < sizeof elf; i += 7) elf[i] = (unsigned char)i;
    cr_assert_eq(val((const char *)elf, sizeof elf, why), FOLIO_ERR_BINARY);
    cr_assert(strstr(why, "binary"), "%s", why);
    /* random bytes: binary (many control bytes), never OK */
    uint64_t seed = 7;
    unsigned char rnd[4096];
    for (size_t i = 0; i < sizeof rnd; i++) rnd[i] = (unsigned char)folio_splitmix64(&seed);
    cr_assert_eq(val((const char *)rnd, sizeof rnd, why), FOLIO_ERR_BINARY);
    /* control bytes beyond the 8 KiB probe do not make it binary */
    static char big[20000];
    memset(big, 'x', sizeof big);
    for (size_t i = 9000; i < 9100; i++) big[i] = 0x01;
    cr_assert_eq(val(big, sizeof big, why), FOLIO_OK, "%s", why);
}

Test(shard_utf8, bom)
{
    cr_assert_eq(folio_utf8_bom_len("\xEF\xBB\xBFhello", 8), 3);
    cr_assert_eq(folio_utf8_bom_len("hello", 5), 0);
    cr_assert_eq(folio_utf8_bom_len("\xEF\xBB", 2), 0);
}

/* Reference: decode by the RFC 3629 table, return the offset of the first
 * problem (NUL or invalid sequence) or SIZE_MAX. */
static size_t ref_first_error(const unsigned char *s, size_t n, bool *is_nul)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c == 0) { *is_nul = true; return i; }
        if (c < 0x80) { i++; continue; }
        *is_nul = false;
        unsigned lo = 0x80, hi = 0xBF;
        size_t need;
        if (c >= 0xC2 && c <= 0xDF) need = 1;
        else if (c == 0xE0) { need = 2; lo = 0xA0; }
        else if (c >= 0xE1 && c <= 0xEC) need = 2;
        else if (c == 0xED) { need = 2; hi = 0x9F; }
        else if (c >= 0xEE && c <= 0xEF) need = 2;
        else if (c == 0xF0) { need = 3; lo = 0x90; }
        else if (c >= 0xF1 && c <= 0xF3) need = 3;
        else if (c == 0xF4) { need = 3; hi = 0x8F; }
        else return i;
        for (size_t k = 1; k <= need; k++) {
            if (i + k >= n) return i;
            unsigned d = s[i + k];
            unsigned l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
            if (d < l || d > h) return i;
        }
        i += need + 1;
    }
    return SIZE_MAX;
}

Test(shard_utf8, random_against_reference)
{
    uint64_t seed = 12345;
    static const char *const pieces[] = {
        "a", "Z", " ", "\n", "\xC3\xA9", "\xE4\xB8\xAD", "\xF0\x9F\x98\x80", "\xF4\x8F\xBF\xBF", "\xED\x9F\xBF",
    };
    char why[200];
    for (int iter = 0; iter < 20000; iter++) {
        unsigned char buf[256];
        size_t n = 0;
        size_t want = 100 + folio_splitmix64(&seed) % 100;
        while (n + 4 < want) {
            const char *p = pieces[folio_splitmix64(&seed) % (sizeof pieces / sizeof pieces[0])];
            size_t l = strlen(p);
            memcpy(buf + n, p, l);
            n += l;
        }
        /* corrupt 0..2 bytes with any value (a NUL at most once) */
        int k = (int)(folio_splitmix64(&seed) % 3);
        bool nul_used = false;
        for (int j = 0; j < k; j++) {
            unsigned char v = (unsigned char)folio_splitmix64(&seed);
            if (v < 0x20 && v != 0) v |= 0x80;
            if (v == 0 && nul_used) v = 0xC0;
            nul_used |= v == 0;
            buf[folio_splitmix64(&seed) % n] = v;
        }
        /* sometimes cut the end, maybe mid-sequence */
        if (folio_splitmix64(&seed) % 4 == 0) n -= folio_splitmix64(&seed) % 3;
        bool is_nul = false;
        size_t off = ref_first_error(buf, n, &is_nul);
        folio_status_t st = val((const char *)buf, n, why);
        if (off == SIZE_MAX) {
            cr_assert_eq(st, FOLIO_OK, "iter %d: %s", iter, why);
        } else {
            cr_assert_eq(st, is_nul ? FOLIO_ERR_NUL : FOLIO_ERR_UTF8, "iter %d: got %s (%s), ref offset %zu", iter,
                         folio_status_str(st), why, off);
            char at[64];
            snprintf(at, sizeof at, "byte %zu", off);
            cr_assert(strstr(why, at), "iter %d: '%s' lacks '%s'", iter, why, at);
        }
    }
}
