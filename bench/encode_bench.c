/* bench/encode_bench.c — per-token CPU costs of the encoder's linear stages
 * outside the attention layers: the hashed embedding (folio_embed) and the
 * fixed-point pooling (folio_pool_fixed, run three times per token by ingest:
 * sentences, sections, document).  One core (OMP_NUM_THREADS=1 by the
 * script), best of 5, on the tokens of the given text file.
 *   encode_bench FILE [MAX_TOKENS]
 * Prints one JSON line. */
#include "attn/attn.h"
#include "shard/shard.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: encode_bench FILE [MAX_TOKENS]\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    const long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)len + 1);
    if (!text || fread(text, 1, (size_t)len, f) != (size_t)len) {
        fprintf(stderr, "%s: cannot read\n", argv[1]);
        return 1;
    }
    fclose(f);
    folio_span_t *toks;
    uint32_t nt;
    if (folio_tokenize(text, (size_t)len, &toks, &nt) != FOLIO_OK || nt == 0) {
        fprintf(stderr, "%s: no tokens\n", argv[1]);
        return 1;
    }
    const uint32_t cap = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 300000;
    const uint32_t n = nt < cap ? nt : cap, d = 256, sent = 30;
    float *X = malloc(sizeof(float) * (size_t)n * d);
    const uint32_t m = (n + sent - 1) / sent;
    uint32_t *b = malloc(sizeof *b * m), *e = malloc(sizeof *e * m);
    int64_t *acc = calloc((size_t)m * d, sizeof *acc);
    if (!X || !b || !e || !acc) return 1;
    for (uint32_t r = 0; r < m; r++) {
        b[r] = r * sent;
        e[r] = r * sent + sent < n ? r * sent + sent : n;
    }
    double be = 1e30, bp = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now();
        if (folio_embed(text, toks, NULL, n, d, 1234, X) != FOLIO_OK) return 1;
        double t1 = now();
        folio_pool_fixed(X, 0, n, d, b, e, m, acc);
        double t2 = now();
        be = t1 - t0 < be ? t1 - t0 : be;
        bp = t2 - t1 < bp ? t2 - t1 : bp;
    }
    double cs = 0; /* a checksum, so that two builds can be seen to agree */
    for (size_t i = 0; i < (size_t)m * d; i += 7) cs += (double)acc[i] * 1e-9;
    for (size_t i = 0; i < (size_t)n * d; i += 7) cs += X[i];
    printf("{\"tokens\":%u,\"d\":%u,\"embed_us_per_token\":%.3f,\"pool_ns_per_token\":%.1f,\"checksum\":%.6f}\n", n,
           d, be / n * 1e6, bp / n * 1e9, cs);
    free(X); free(b); free(e); free(acc); free(toks); free(text);
    return 0;
}
