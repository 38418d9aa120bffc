/* tests/unit/test_common_json.c — JSON strings: the parser (which copies
 * plain runs 16 bytes at a time) decodes exactly what a plain byte-by-byte
 * decoder of RFC 8259 strings decodes, and refuses exactly what it refuses,
 * on random strings built to put quotes, backslashes, escapes, \u
 * sequences (surrogate pairs, lone halves), control characters and UTF-8
 * bytes at every offset around the 16-byte steps; the error names the byte
 * offset of the fault; real JSONL lines parse as before. */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

/* ------------------------------------------------------------ reference */

static int hexv(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int hex4(const unsigned char *s, size_t n, size_t i, unsigned *cp)
{
    if (i + 4 > n) return -1;
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexv(s[i + (size_t)k]);
        if (h < 0) return -1;
        v = v * 16 + (unsigned)h;
    }
    *cp = v;
    return 0;
}

static size_t utf8(unsigned char *o, unsigned cp)
{
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) { o[0] = (unsigned char)(0xC0 | cp >> 6); o[1] = (unsigned char)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12); o[1] = (unsigned char)(0x80 | (cp >> 6 & 63));
        o[2] = (unsigned char)(0x80 | (cp & 63));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | cp >> 18); o[1] = (unsigned char)(0x80 | (cp >> 12 & 63));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 63)); o[3] = (unsigned char)(0x80 | (cp & 63));
    return 4;
}

/* Decodes the string body s[0..n) (no quotes around it; a '"' inside ends
 * it).  Returns the decoded length, or -1 if the body is not a valid,
 * terminated string with nothing after its closing quote. */
static long ref_decode(const unsigned char *s, size_t n, unsigned char *out)
{
    size_t i = 0, o = 0;
    for (;;) {
        if (i >= n) return -1; /* unterminated */
        unsigned c = s[i];
        if (c == '"') return i + 1 == n ? (long)o : -1;
        if (c < 0x20) return -1;
        if (c != '\\') { out[o++] = (unsigned char)c; i++; continue; }
        if (++i >= n) return -1;
        c = s[i++];
        switch (c) {
        case '"': case '\\': case '/': out[o++] = (unsigned char)c; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (hex4(s, n, i, &cp)) return -1;
            i += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return -1;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (i + 2 > n || s[i] != '\\' || s[i + 1] != 'u' || hex4(s, n, i + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                    return -1;
                i += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            o += utf8(out + o, cp);
            break;
        }
        default: return -1;
        }
    }
}

/* ------------------------------------------------------------ random bodies */

static const char *const PIECES[] = {
    "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t", "\\u0041", "\\u00e9", "\\u20AC", "\\u0000",
    "\\ud83d\\ude00", "\\uD834\\uDD1E", "\\ud83d", "\\ude00", "\\ud83dx", "\\u12", "\\uZZZZ", "\\x", "\\",
    "\"", "\x01", "\x1f", "\t", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\x7f", "\xff",
};

/* A body: plain runs of random length (to land the next piece at every
 * offset of a 16-byte step) and, with probability bad/8, one piece that may
 * be invalid; always ends with the closing quote. */
static size_t make_body(uint64_t *st, unsigned char *b, size_t cap, int pieces, int bad)
{
    size_t n = 0;
    for (int k = 0; k < pieces && n + 64 < cap; k++) {
        size_t run = folio_splitmix64(st) % 40;
        for (size_t j = 0; j < run; j++) b[n++] = (unsigned char)('a' + folio_splitmix64(st) % 26);
        const size_t np = sizeof PIECES / sizeof *PIECES;
        size_t pick = folio_splitmix64(st) % np;
        /* the first 14 pieces are valid escapes; the rest often are not */
        if (pick >= 14 && (int)(folio_splitmix64(st) % 8) >= bad) pick = folio_splitmix64(st) % 14;
        size_t len = strlen(PIECES[pick]);
        memcpy(b + n, PIECES[pick], len);
        n += len;
    }
    b[n++] = '"';
    return n;
}

static void check_body(const unsigned char *body, size_t n)
{
    /* {"k":"<body>} with the body's own closing quote */
    char *doc = malloc(n + 16);
    int h = snprintf(doc, 16, "{\"k\":\"");
    memcpy(doc + h, body, n);
    doc[h + (int)n] = '}';
    const size_t len = (size_t)h + n + 1;
    unsigned char *want = malloc(n + 8);
    long wl = ref_decode(body, n, want);
    folio_json_t *j = NULL;
    char err[256] = "";
    folio_status_t st = folio_json_parse(doc, len, &j, err, sizeof err);
    if (wl < 0) {
        /* a body with a quote inside parses as a shorter string followed by
         * junk: refused either way */
        cr_assert_neq(st, FOLIO_OK, "accepted an invalid string: %.*s", (int)len, doc);
        cr_assert(strstr(err, "at byte") != NULL, "error without an offset: %s", err);
    } else {
        cr_assert_eq(st, FOLIO_OK, "refused a valid string (%s): %.*s", err, (int)len, doc);
        size_t got_len = 0;
        const char *got = folio_json_get_str(j, "k", &got_len);
        cr_assert_not_null(got);
        cr_assert_eq(got_len, (size_t)wl, "length %zu, want %ld: %.*s", got_len, wl, (int)len, doc);
        cr_assert_eq(memcmp(got, want, (size_t)wl), 0, "bytes differ: %.*s", (int)len, doc);
        cr_assert_eq(got[got_len], '\0');
    }
    folio_json_free(&j);
    free(want);
    free(doc);
}

Test(json, strings_equal_a_plain_decoder)
{
    uint64_t st = 20261128;
    unsigned char body[4096];
    int valid = 0, invalid = 0;
    for (int t = 0; t < 20000; t++) {
        size_t n = make_body(&st, body, sizeof body, 1 + (int)(folio_splitmix64(&st) % 12), t % 3 == 0 ? 4 : 0);
        unsigned char tmp[4096 + 8];
        if (ref_decode(body, n, tmp) < 0) invalid++;
        else valid++;
        check_body(body, n);
    }
    /* both kinds were drawn, many times */
    cr_assert_gt(valid, 5000);
    cr_assert_gt(invalid, 1000);
}

/* Every length of a plain string around the 16-byte steps, with the special
 * byte (a quote, an escape, a control character) at every position. */
Test(json, special_byte_at_every_offset)
{
    unsigned char body[128];
    static const char *const specials[] = {"\\n", "\\\"", "\x02", "\\u00e9"};
    for (size_t len = 0; len <= 70; len++)
        for (size_t at = 0; at <= len; at++)
            for (size_t k = 0; k < sizeof specials / sizeof *specials; k++) {
                size_t n = 0;
                for (size_t i = 0; i < len; i++) {
                    if (i == at) {
                        memcpy(body + n, specials[k], strlen(specials[k]));
                        n += strlen(specials[k]);
                    }
                    body[n++] = (unsigned char)('A' + i % 26);
                }
                body[n++] = '"';
                check_body(body, n);
            }
}

Test(json, unterminated_and_offsets)
{
    char err[256];
    folio_json_t *j = NULL;
    /* 40 plain bytes then the end: no closing quote */
    char doc[64] = "\"";
    memset(doc + 1, 'x', 40);
    cr_assert_eq(folio_json_parse(doc, 41, &j, err, sizeof err), FOLIO_ERR_PARSE);
    cr_assert(strstr(err, "unterminated string") != NULL, "%s", err);
    /* a control character at byte 21 (after the opening quote at 0) */
    memset(doc + 1, 'y', 40);
    doc[21] = '\x03';
    doc[41] = '"';
    cr_assert_eq(folio_json_parse(doc, 42, &j, err, sizeof err), FOLIO_ERR_PARSE);
    cr_assert(strstr(err, "control character in string at byte 21") != NULL, "%s", err);
    /* an escaped quote right before the end does not close the string */
    cr_assert_eq(folio_json_parse("\"abc\\\"", 6, &j, err, sizeof err), FOLIO_ERR_PARSE);
    cr_assert(strstr(err, "unterminated string") != NULL, "%s", err);
}
