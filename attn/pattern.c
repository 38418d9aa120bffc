/* attn/pattern.c — the pattern value (parse, print, validate, budget mode)
 * and the pure arithmetic of the block/group hierarchy. */
#include "attn.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const KIND_NAMES[] = {"local", "longt5", "hier", "hier+topk", "dense"};

folio_pattern_t folio_pattern_default(void)
{
    folio_pattern_t p = {
        .kind = FOLIO_PATTERN_HIER_TOPK, .window = 256, .block = 64, .group = 64, .topk = 8,
        .layers = 2, .heads = 4, .head_dim = 64, .beta = 1.0f, .budget = 0,
    };
    return p;
}

static folio_status_t perr(char *err, size_t errlen, folio_status_t st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static folio_status_t perr(char *err, size_t errlen, folio_status_t st, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return st;
}

folio_status_t folio_pattern_validate(const folio_pattern_t *p, char *err, size_t errlen)
{
    if ((unsigned)p->kind > FOLIO_PATTERN_DENSE)
        return perr(err, errlen, FOLIO_ERR_ARG, "pattern: unknown variant %d", (int)p->kind);
    if (p->window > (1u << 30))
        return perr(err, errlen, FOLIO_ERR_ARG, "pattern: window=%u is out of range (0 .. 2^30)", p->window);
    if (p->block < 1 || p->block > 4096 || (p->block & (p->block - 1)))
        return perr(err, errlen, FOLIO_ERR_ARG, "pattern: block=%u must be a power of two in 1 .. 4096", p->block);
    if (p->group < 2 || p->group > 65536)
        return perr(err, errlen, FOLIO_ERR_ARG, "pattern: group=%u must be in 2 .. 65536", p->group);
    if (p->topk > 4096)
        return perr(err, errlen, FOLIO_ERR_ARG, "pattern: topk=%u must be in 0 .. 4096", p->topk);
    if (p->layers < 1 || p->layers > 64)
        return perr(err, errlen, FOLIO_ERR_ARG, "pattern: layers=%u must be in 1 .. 64", p->layers);
    if (p->heads < 1 || p->heads > 64)
        return perr(err, errlen, FOLIO_ERR_ARG, "pattern: heads=%u must be in 1 .. 64", p->heads);
    if (p->head_dim < 1 || p->head_dim > 1024)
        return perr(err, errlen, FOLIO_ERR_ARG, "pattern: head_dim=%u must be in 1 .. 1024", p->head_dim);
    if (p->heads * p->head_dim > 8192)
        return perr(err, errlen, FOLIO_ERR_ARG, "pattern: heads*head_dim=%u exceeds 8192", p->heads * p->head_dim);
    if (!(p->beta > 0.0f) || !isfinite(p->beta) || p->beta > 1e4f)
        return perr(err, errlen, FOLIO_ERR_ARG, "pattern: beta=%g must be a finite number in (0, 1e4]", (double)p->beta);
    if (p->sumbias > 1)
        return perr(err, errlen, FOLIO_ERR_ARG, "pattern: sumbias=%u must be 0 or 1", p->sumbias);
    if (p->budget != 0) {
        if (p->budget < 64 || p->budget > (1u << 30))
            return perr(err, errlen, FOLIO_ERR_ARG, "pattern: budget=%u must be 0 (fixed) or in 64 .. 2^30 keys per query", p->budget);
        if (p->kind == FOLIO_PATTERN_LONGT5 || p->kind == FOLIO_PATTERN_DENSE)
            return perr(err, errlen, FOLIO_ERR_ARG, "pattern: budget mode needs the local, hier or hier+topk variant, not %s",
                        KIND_NAMES[p->kind]);
    }
    return FOLIO_OK;
}

static bool parse_u32(const char *s, uint32_t *out)
{
    if (!*s || !isdigit((unsigned char)*s)) return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > UINT32_MAX) return false;
    *out = (uint32_t)v;
    return true;
}

folio_status_t folio_pattern_parse(const char *spec, folio_pattern_t *p, char *err, size_t errlen)
{
    folio_pattern_t r = folio_pattern_default();
    if (spec) {
        size_t len = strlen(spec);
        if (len > 4096) return perr(err, errlen, FOLIO_ERR_PARSE, "pattern spec is too long (%zu bytes)", len);
        char buf[4097];
        memcpy(buf, spec, len + 1);
        char *save = NULL;
        for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
            while (isspace((unsigned char)*item)) item++;
            char *e = item + strlen(item);
            while (e > item && isspace((unsigned char)e[-1])) *--e = 0;
            if (!*item) continue;
            char *eq = strchr(item, '=');
            if (!eq) {
                int kind = -1;
                for (int k = 0; k <= FOLIO_PATTERN_DENSE; k++)
                    if (!strcmp(item, KIND_NAMES[k])) kind = k;
                if (!strcmp(item, "hier_topk") || !strcmp(item, "default")) kind = FOLIO_PATTERN_HIER_TOPK;
                if (kind < 0)
                    return perr(err, errlen, FOLIO_ERR_PARSE,
                                "pattern '%s': unknown variant '%s' (local, longt5, hier, hier+topk, dense, or key=value)",
                                spec, item);
                r.kind = (folio_pattern_kind_t)kind;
                continue;
            }
            *eq = 0;
            char *key = item, *val = eq + 1;
            char *ke = eq;
            while (ke > key && isspace((unsigned char)ke[-1])) *--ke = 0;
            while (isspace((unsigned char)*val)) val++;
            if (!strcmp(key, "beta")) {
                char *end;
                errno = 0;
                float b = strtof(val, &end);
                if (!*val || *end || errno)
                    return perr(err, errlen, FOLIO_ERR_PARSE, "pattern '%s': beta='%s' is not a number", spec, val);
                r.beta = b;
                continue;
            }
            uint32_t *field = NULL;
            if (!strcmp(key, "window") || !strcmp(key, "W")) field = &r.window;
            else if (!strcmp(key, "block") || !strcmp(key, "B")) field = &r.block;
            else if (!strcmp(key, "group") || !strcmp(key, "G")) field = &r.group;
            else if (!strcmp(key, "topk") || !strcmp(key, "k")) field = &r.topk;
            else if (!strcmp(key, "layers") || !strcmp(key, "L")) field = &r.layers;
            else if (!strcmp(key, "heads") || !strcmp(key, "H")) field = &r.heads;
            else if (!strcmp(key, "head_dim") || !strcmp(key, "d_h")) field = &r.head_dim;
            else if (!strcmp(key, "budget")) field = &r.budget;
            else if (!strcmp(key, "sumbias")) field = &r.sumbias;
            else
                return perr(err, errlen, FOLIO_ERR_PARSE,
                            "pattern '%s': unknown key '%s' (window, block, group, topk, layers, heads, head_dim, beta, budget, sumbias)",
                            spec, key);
            if (!parse_u32(val, field))
                return perr(err, errlen, FOLIO_ERR_PARSE,
                            "pattern '%s': %s='%s' is not a non-negative integer", spec, key, val);
        }
    }
    FOLIO_TRY(folio_pattern_validate(&r, err, errlen));
    *p = r;
    return FOLIO_OK;
}

size_t folio_pattern_print(const folio_pattern_t *p, char *buf, size_t cap)
{
    unsigned kind = (unsigned)p->kind <= FOLIO_PATTERN_DENSE ? (unsigned)p->kind : FOLIO_PATTERN_HIER_TOPK;
    /* shortest beta that reads back as the same float */
    char beta[32];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(beta, sizeof beta, "%.*g", prec, (double)p->beta);
        if (strtof(beta, NULL) == p->beta) break;
    }
    int len = snprintf(buf, cap, "%s,window=%u,block=%u,group=%u,topk=%u,layers=%u,heads=%u,head_dim=%u,beta=%s",
                       KIND_NAMES[kind], p->window, p->block, p->group, p->topk, p->layers, p->heads,
                       p->head_dim, beta);
    if (len < 0) return 0;
    if (p->budget) {
        size_t off = (size_t)len < cap ? (size_t)len : (cap ? cap - 1 : 0);
        int l2 = snprintf(buf + off, cap > off ? cap - off : 0, ",budget=%u", p->budget);
        if (l2 > 0) len += l2;
    }
    if (p->sumbias) {
        size_t off = (size_t)len < cap ? (size_t)len : (cap ? cap - 1 : 0);
        int l2 = snprintf(buf + off, cap > off ? cap - off : 0, ",sumbias=%u", p->sumbias);
        if (l2 > 0) len += l2;
    }
    return (size_t)len;
}

/* ------------------------------------------------------------------ hierarchy */

folio_status_t folio_hier_init(folio_hier_t *h, uint64_t n, uint32_t B, uint32_t G)
{
    FOLIO_CHECK_GENERIC(n >= 1 && B >= 1 && G >= 2, FOLIO_ERR_ARG,
                        "hierarchy: need n >= 1, B >= 1, G >= 2 (n=%llu B=%u G=%u)",
                        (unsigned long long)n, B, G);
    uint64_t nb = (n + B - 1) / B;
    FOLIO_CHECK_GENERIC(nb < (1ull << 31), FOLIO_ERR_TOO_LARGE,
                        "hierarchy: document of %llu tokens has too many blocks", (unsigned long long)n);
    memset(h, 0, sizeof *h);
    h->n = n;
    h->B = B;
    h->G = G;
    uint32_t l = 1;
    h->count[1] = (uint32_t)nb;
    while (h->count[l] > G) {
        h->count[l + 1] = (h->count[l] + G - 1) / G;
        l++;
    }
    h->n_levels = l;
    uint64_t off = 0;
    for (uint32_t i = 1; i <= l; i++) {
        h->offset[i] = (uint32_t)off;
        off += h->count[i];
    }
    FOLIO_CHECK_GENERIC(off < (1ull << 31), FOLIO_ERR_TOO_LARGE, "hierarchy: too many nodes");
    h->n_nodes = (uint32_t)off;
    return FOLIO_OK;
}

void folio_hier_siblings(const folio_hier_t *h, uint32_t l, uint32_t idx, uint32_t *s0, uint32_t *s1)
{
    if (l >= h->n_levels) {
        *s0 = 0;
        *s1 = h->count[h->n_levels];
        return;
    }
    uint32_t par = idx / h->G;
    *s0 = par * h->G;
    uint64_t e = (uint64_t)*s0 + h->G;
    *s1 = e < h->count[l] ? (uint32_t)e : h->count[l];
}

void folio_hier_node_tokens(const folio_hier_t *h, uint32_t l, uint32_t idx, uint64_t *t0, uint64_t *t1)
{
    uint64_t span = h->B;
    for (uint32_t i = 1; i < l; i++) span *= h->G;
    uint64_t a = (uint64_t)idx * span;
    *t0 = a < h->n ? a : h->n;
    *t1 = a + span < h->n ? a + span : h->n;
}

void folio_hier_node_level(const folio_hier_t *h, uint32_t f, uint32_t *level, uint32_t *idx)
{
    uint32_t l = 1;
    while (l < h->n_levels && f >= h->offset[l + 1]) l++;
    *level = l;
    *idx = f - h->offset[l];
}

void folio_hier_log_sizes(const folio_hier_t *h, float *out)
{
    for (uint32_t l = 1; l <= h->n_levels; l++)
        for (uint32_t i = 0; i < h->count[l]; i++) {
            uint64_t t0, t1;
            folio_hier_node_tokens(h, l, i, &t0, &t1);
            out[h->offset[l] + i] = t1 > t0 ? (float)log((double)(t1 - t0)) : 0.0f;
        }
}

/* ------------------------------------------------------------------ budget */

static uint32_t hier_summary_keys(const folio_hier_t *h)
{
    uint32_t s = 0;
    for (uint32_t l = 1; l <= h->n_levels; l++) s += (h->count[l] < h->G ? h->count[l] : h->G) - 1;
    return s;
}

uint32_t folio_pattern_summary_max(const folio_pattern_t *p, uint64_t n)
{
    folio_hier_t h;
    if (n == 0 || folio_hier_init(&h, n, p->block, p->group) != FOLIO_OK) return 0;
    switch (p->kind) {
    case FOLIO_PATTERN_LOCAL:
    case FOLIO_PATTERN_DENSE: return 0;
    case FOLIO_PATTERN_LONGT5: return h.count[1];
    case FOLIO_PATTERN_HIER: return hier_summary_keys(&h);
    case FOLIO_PATTERN_HIER_TOPK: {
        uint32_t s = hier_summary_keys(&h);
        if (h.n_levels >= 2) s += p->topk < h.count[1] ? p->topk : h.count[1];
        return s;
    }
    }
    return 0;
}

uint64_t folio_pattern_keys_bound(const folio_pattern_t *p, uint64_t n)
{
    if (n == 0) return 0;
    uint64_t w = 2ull * p->window + 1;
    if (p->kind == FOLIO_PATTERN_DENSE || w > n) w = n;
    return w + folio_pattern_summary_max(p, n);
}

folio_status_t folio_pattern_resolve(const folio_pattern_t *p, uint64_t n, folio_pattern_t *out)
{
    char err[256];
    folio_status_t st = folio_pattern_validate(p, err, sizeof err);
    FOLIO_CHECK_GENERIC(st == FOLIO_OK, st, "%s", err);
    FOLIO_CHECK_GENERIC(n >= 1, FOLIO_ERR_ARG, "pattern: cannot resolve for an empty document");
    folio_pattern_t r = *p;
    if (r.kind == FOLIO_PATTERN_DENSE) {
        r.window = n > (1u << 30) ? (1u << 30) : (uint32_t)n;
        *out = r;
        return FOLIO_OK;
    }
    if (!p->budget) {
        *out = r;
        return FOLIO_OK;
    }
    uint64_t K = p->budget;
    if (n <= K) { /* the whole document fits the budget: exact attention */
        r.kind = FOLIO_PATTERN_LOCAL;
        r.window = (uint32_t)n;
        r.topk = 0;
        *out = r;
        return FOLIO_OK;
    }
    if (r.kind == FOLIO_PATTERN_LOCAL) {
        r.window = (uint32_t)((K - 1) / 2);
        *out = r;
        return FOLIO_OK;
    }
    /* About a quarter of the budget for summary keys: routed keys first
     * (k <= K/16), then the largest group size whose levels*(G-1) fits. */
    uint64_t S = K / 4;
    uint32_t k = r.kind == FOLIO_PATTERN_HIER_TOPK ? p->topk : 0;
    if (k > K / 16) k = (uint32_t)(K / 16);
    /* exact routing costs ~2*nb*d flops per token against ~4*K*d for the
     * attention: beyond nb = B*K/8 (1/16 of it) it would break the constant
     * cost per token, so long documents get no routed keys in budget mode */
    const uint64_t nb = (n + r.block - 1) / r.block;
    if (nb > (uint64_t)r.block * K / 8) k = 0;
    uint32_t bestG = 0;
    for (;;) {
        for (uint32_t G = 2; G <= 65536; G++) {
            folio_hier_t h;
            FOLIO_TRY(folio_hier_init(&h, n, r.block, G));
            uint64_t cost = (uint64_t)h.n_levels * (G - 1) + k;
            if (cost <= S) bestG = G;
            else if (h.n_levels == 1) break; /* cost only grows from here on */
        }
        if (bestG || k == 0) break;
        k = 0;
    }
    if (!bestG) { /* not even binary summaries fit: local only */
        r.kind = FOLIO_PATTERN_LOCAL;
        r.topk = 0;
        r.window = (uint32_t)((K - 1) / 2);
        *out = r;
        return FOLIO_OK;
    }
    r.group = bestG;
    r.topk = k;
    r.window = 0;
    uint32_t s = folio_pattern_summary_max(&r, n);
    r.window = (uint32_t)((K - s - 1) / 2);
    *out = r;
    return FOLIO_OK;
}
