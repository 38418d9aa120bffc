/* common/json.c — a strict, small recursive-descent JSON parser (RFC 8259)
 * for JSONL inputs and evaluation data, and a string escaper for writers.
 * Depth is bounded so hostile input cannot overflow the stack. */
#include "common.h"

#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define JSON_MAX_DEPTH 256

typedef struct {
    const char *s, *end, *start;
    char *err;
    size_t errlen;
} jp_t;

static folio_status_t jfail(jp_t *p, const char *what)
{
    if (p->err && p->errlen)
        snprintf(p->err, p->errlen, "%s at byte %zu", what, (size_t)(p->s - p->start));
    return FOLIO_ERR_PARSE;
}

static void skip_ws(jp_t *p)
{
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r')) p->s++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int read_hex4(jp_t *p, unsigned *out)
{
    if (p->end - p->s < 4) return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p->s[i]);
        if (h < 0) return -1;
        v = v * 16 + (unsigned)h;
    }
    p->s += 4;
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the run at s of bytes a string copies as they are: up to the
 * first '"', '\\' or control character (< 0x20), or to end.  Document
 * texts are long and mostly plain, and the reader parses every input twice
 * (planning, then the rounds) on one thread: 16 bytes a step, not one. */
static size_t plain_run(const char *s, const char *end)
{
    const char *q = s;
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'), ctl = _mm_set1_epi8(0x1f);
    while (end - q >= 16) {
        const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)q);
        /* unsigned c <= 0x1f exactly when max(c, 0x1f) == 0x1f */
        const __m128i stop = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                          _mm_cmpeq_epi8(_mm_max_epu8(v, ctl), ctl));
        const int bits = _mm_movemask_epi8(stop);
        if (bits) return (size_t)(q - s) + (size_t)__builtin_ctz((unsigned)bits);
        q += 16;
    }
#endif
    while (q < end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20) q++;
    return (size_t)(q - s);
}

/* Parses a string body after the opening quote; output is never longer than
 * the input, so one allocation of the raw length suffices. */
static folio_status_t parse_string(jp_t *p, char **out, size_t *outlen)
{
    const char *q = p->s;
    for (;;) { /* the closing quote: escapes skip the byte they escape */
        q += plain_run(q, p->end);
        if (q >= p->end || *q == '"') break;
        q += *q == '\\' ? 2 : 1; /* a control character is refused below */
    }
    if (q >= p->end) return jfail(p, "unterminated string");
    char *buf = malloc((size_t)(q - p->s) + 1);
    if (!buf) return FOLIO_ERR_NOMEM;
    size_t n = 0;
    while (p->s < p->end && *p->s != '"') {
        const size_t k = plain_run(p->s, p->end);
        if (k) {
            memcpy(buf + n, p->s, k);
            n += k;
            p->s += k;
            continue;
        }
        unsigned char c = (unsigned char)*p->s;
        if (c < 0x20) { free(buf); return jfail(p, "control character in string"); }
        p->s++;
        if (p->s >= p->end) { free(buf); return jfail(p, "bad escape"); }
        char e = *p->s++;
        switch (e) {
        case '"': buf[n++] = '"'; break;
        case '\\': buf[n++] = '\\'; break;
        case '/': buf[n++] = '/'; break;
        case 'b': buf[n++] = '\b'; break;
        case 'f': buf[n++] = '\f'; break;
        case 'n': buf[n++] = '\n'; break;
        case 'r': buf[n++] = '\r'; break;
        case 't': buf[n++] = '\t'; break;
        case 'u': {
            unsigned cp;
            if (read_hex4(p, &cp) < 0) { free(buf); return jfail(p, "bad \\u escape"); }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (p->end - p->s >= 6 && p->s[0] == '\\' && p->s[1] == 'u') {
                    p->s += 2;
                    if (read_hex4(p, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF) {
                        free(buf); return jfail(p, "bad surrogate pair");
                    }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else {
                    free(buf); return jfail(p, "lone high surrogate");
                }
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                free(buf); return jfail(p, "lone low surrogate");
            }
            n += put_utf8(buf + n, cp);
            break;
        }
        default: free(buf); return jfail(p, "bad escape");
        }
    }
    p->s++; /* closing quote */
    buf[n] = 0;
    *out = buf;
    *outlen = n;
    return FOLIO_OK;
}

static folio_status_t parse_value(jp_t *p, folio_json_t **out, int depth);

static folio_status_t push(folio_json_t *v, folio_json_t *item, char *key, size_t *cap)
{
    if (v->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        folio_json_t **ni = realloc(v->items, nc * sizeof *ni);
        if (!ni) return FOLIO_ERR_NOMEM;
        v->items = ni;
        if (v->type == FOLIO_JSON_OBJ) {
            char **nk = realloc(v->keys, nc * sizeof *nk);
            if (!nk) return FOLIO_ERR_NOMEM;
            v->keys = nk;
        }
        *cap = nc;
    }
    v->items[v->n] = item;
    if (v->type == FOLIO_JSON_OBJ) v->keys[v->n] = key;
    v->n++;
    return FOLIO_OK;
}

static folio_status_t parse_container(jp_t *p, folio_json_t *v, int depth)
{
    bool obj = v->type == FOLIO_JSON_OBJ;
    char close = obj ? '}' : ']';
    size_t cap = 0;
    skip_ws(p);
    if (p->s < p->end && *p->s == close) { p->s++; return FOLIO_OK; }
    for (;;) {
        char *key = NULL;
        size_t klen;
        skip_ws(p);
        if (obj) {
            if (p->s >= p->end || *p->s != '"') return jfail(p, "expected object key");
            p->s++;
            FOLIO_TRY(parse_string(p, &key, &klen));
            skip_ws(p);
            if (p->s >= p->end || *p->s != ':') { free(key); return jfail(p, "expected ':'"); }
            p->s++;
        }
        folio_json_t *item = NULL;
        folio_status_t st = parse_value(p, &item, depth + 1);
        if (st == FOLIO_OK) st = push(v, item, key, &cap);
        if (st != FOLIO_OK) { free(key); folio_json_free(&item); return st; }
        skip_ws(p);
        if (p->s < p->end && *p->s == ',') { p->s++; continue; }
        if (p->s < p->end && *p->s == close) { p->s++; return FOLIO_OK; }
        return jfail(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static folio_status_t parse_number(jp_t *p, folio_json_t *v)
{
    const char *s = p->s;
    if (s < p->end && *s == '-') s++;
    if (s >= p->end) return jfail(p, "bad number");
    if (*s == '0') s++;
    else if (*s >= '1' && *s <= '9') while (s < p->end && *s >= '0' && *s <= '9') s++;
    else return jfail(p, "bad number");
    if (s < p->end && *s == '.') {
        s++;
        if (s >= p->end || *s < '0' || *s > '9') return jfail(p, "bad number");
        while (s < p->end && *s >= '0' && *s <= '9') s++;
    }
    if (s < p->end && (*s == 'e' || *s == 'E')) {
        s++;
        if (s < p->end && (*s == '+' || *s == '-')) s++;
        if (s >= p->end || *s < '0' || *s > '9') return jfail(p, "bad number");
        while (s < p->end && *s >= '0' && *s <= '9') s++;
    }
    char tmp[64];
    size_t n = (size_t)(s - p->s);
    if (n >= sizeof tmp) n = sizeof tmp - 1; /* precision beyond 63 digits is moot */
    memcpy(tmp, p->s, n);
    tmp[n] = 0;
    v->num = strtod(tmp, NULL);
    p->s = s;
    return FOLIO_OK;
}

static folio_status_t parse_value(jp_t *p, folio_json_t **out, int depth)
{
    if (depth > JSON_MAX_DEPTH) return jfail(p, "nesting too deep");
    skip_ws(p);
    if (p->s >= p->end) return jfail(p, "unexpected end of input");
    folio_json_t *v = calloc(1, sizeof *v);
    if (!v) return FOLIO_ERR_NOMEM;
    folio_status_t st = FOLIO_OK;
    char c = *p->s;
    if (c == '{' || c == '[') {
        v->type = c == '{' ? FOLIO_JSON_OBJ : FOLIO_JSON_ARR;
        p->s++;
        st = parse_container(p, v, depth);
    } else if (c == '"') {
        v->type = FOLIO_JSON_STR;
        p->s++;
        st = parse_string(p, &v->str, &v->len);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        v->type = FOLIO_JSON_NUM;
        st = parse_number(p, v);
    } else if (p->end - p->s >= 4 && !memcmp(p->s, "true", 4)) {
        v->type = FOLIO_JSON_BOOL; v->b = true; p->s += 4;
    } else if (p->end - p->s >= 5 && !memcmp(p->s, "false", 5)) {
        v->type = FOLIO_JSON_BOOL; p->s += 5;
    } else if (p->end - p->s >= 4 && !memcmp(p->s, "null", 4)) {
        v->type = FOLIO_JSON_NULL; p->s += 4;
    } else {
        st = jfail(p, "unexpected character");
    }
    if (st != FOLIO_OK) { folio_json_free(&v); return st; }
    *out = v;
    return FOLIO_OK;
}

folio_status_t folio_json_parse(const char *s, size_t len, folio_json_t **out, char *err, size_t errlen)
{
    jp_t p = { s, s + len, s, err, errlen };
    *out = NULL;
    folio_json_t *v = NULL;
    FOLIO_TRY(parse_value(&p, &v, 0));
    skip_ws(&p);
    if (p.s != p.end) { folio_json_free(&v); return jfail(&p, "trailing characters"); }
    *out = v;
    return FOLIO_OK;
}

void folio_json_free(folio_json_t **pv)
{
    if (!pv || !*pv) return;
    folio_json_t *v = *pv;
    for (size_t i = 0; i < v->n; i++) {
        folio_json_free(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
    free(v);
    *pv = NULL;
}

const folio_json_t *folio_json_get(const folio_json_t *obj, const char *key)
{
    if (!obj || obj->type != FOLIO_JSON_OBJ) return NULL;
    /* Last one wins on duplicate keys, as in most parsers. */
    for (size_t i = obj->n; i-- > 0;)
        if (!strcmp(obj->keys[i], key)) return obj->items[i];
    return NULL;
}

const char *folio_json_get_str(const folio_json_t *obj, const char *key, size_t *len)
{
    const folio_json_t *v = folio_json_get(obj, key);
    if (!v || v->type != FOLIO_JSON_STR) return NULL;
    if (len) *len = v->len;
    return v->str;
}

void folio_json_write_str(FILE *f, const char *s, size_t len)
{
    static const char hx[] = "0123456789abcdef";
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        case '\b': fputs("\\b", f); break;
        case '\f': fputs("\\f", f); break;
        default:
            if (c < 0x20) { fputs("\\u00", f); fputc(hx[c >> 4], f); fputc(hx[c & 15], f); }
            else fputc(c, f);
        }
    }
    fputc('"', f);
}
