/* bench/shard_bench.c — throughput of the shard stage (read + validate,
 * then tokenize + hashes + sentences + sections) and peak memory of one
 * huge document.  Built and run by bench/shard_bench.sh; not part of the
 * library or the tests.
 *
 *   shard_bench speed FILE...   one JSON line per file:
 *       read MB/s (reader incl. JSON parse and UTF-8 validation), analyze
 *       MB/s and tokens/s (best of 3 passes over the documents in memory),
 *       end-to-end MB/s (read + analyze in one streaming pass, cold stem
 *       memo for the first file only)
 *   shard_bench memory FILE     read + analyze FILE alone; peak RSS / size
 * Rates are given per wall second and per CPU second ("cpu_" keys).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>

#include "shard/shard.h"

/* CPU seconds of this thread: on a shared, loaded machine wall time says
 * more about the neighbours than about the code, so both are reported. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int speed(int argc, char **argv)
{
    for (int f = 0; f < argc; f++) {
        const char *in[] = { argv[f] };
        folio_reader_t *r;
        if (folio_reader_create(in, 1, &r) != FOLIO_OK) return 1;
        char why[256];
        size_t cap = 1024, n = 0, bytes = 0;
        folio_doc_t *docs = calloc(cap, sizeof *docs);
        double t0 = folio_now(), c0 = cpu_now();
        for (;;) {
            if (n == cap) { docs = realloc(docs, 2 * cap * sizeof *docs); memset(docs + cap, 0, cap * sizeof *docs); cap *= 2; }
            folio_status_t st = folio_reader_next(r, &docs[n], why, sizeof why);
            if (st == FOLIO_EOF) break;
            if (st != FOLIO_OK) { folio_doc_clear(&docs[n]); continue; }
            bytes += docs[n].len;
            n++;
        }
        double t_read = folio_now() - t0, c_read = cpu_now() - c0;
        folio_reader_destroy(&r);
        double best = 1e30, cbest = 1e30;
        uint64_t tokens = 0, sents = 0;
        for (int pass = 0; pass < 3; pass++) {
            tokens = sents = 0;
            double a = folio_now(), ca = cpu_now();
            for (size_t i = 0; i < n; i++) {
                if (folio_doc_analyze(&docs[i]) == FOLIO_OK) { tokens += docs[i].n_tokens; sents += docs[i].n_sents; }
            }
            double dt = folio_now() - a, cdt = cpu_now() - ca;
            if (dt < best) best = dt;
            if (cdt < cbest) cbest = cdt;
        }
        for (size_t i = 0; i < n; i++) folio_doc_clear(&docs[i]);
        free(docs);
        /* streaming: read + analyze + free, as ingest does */
        folio_reader_create(in, 1, &r);
        double s0 = folio_now(), cs0 = cpu_now();
        for (;;) {
            folio_doc_t d = { 0 };
            folio_status_t st = folio_reader_next(r, &d, why, sizeof why);
            if (st == FOLIO_EOF) break;
            if (st == FOLIO_OK) folio_doc_analyze(&d);
            folio_doc_clear(&d);
        }
        double t_stream = folio_now() - s0, c_stream = cpu_now() - cs0;
        folio_reader_destroy(&r);
        printf("{\"file\":\"%s\",\"docs\":%zu,\"mb\":%.2f,\"tokens\":%llu,\"sentences\":%llu,"
               "\"read_mb_s\":%.1f,\"analyze_mb_s\":%.1f,\"analyze_mtok_s\":%.2f,\"stream_mb_s\":%.1f,"
               "\"cpu_read_mb_s\":%.1f,\"cpu_analyze_mb_s\":%.1f,\"cpu_analyze_mtok_s\":%.2f,\"cpu_stream_mb_s\":%.1f}\n",
               argv[f], n, bytes / 1e6, (unsigned long long)tokens, (unsigned long long)sents, bytes / t_read / 1e6,
               bytes / best / 1e6, tokens / best / 1e6, bytes / t_stream / 1e6, bytes / c_read / 1e6,
               bytes / cbest / 1e6, tokens / cbest / 1e6, bytes / c_stream / 1e6);
    }
    return 0;
}

static int memory(const char *file)
{
    const char *in[] = { file };
    folio_reader_t *r;
    if (folio_reader_create(in, 1, &r) != FOLIO_OK) return 1;
    char why[256];
    long base = folio_peak_rss_kb();
    double t0 = folio_now();
    for (;;) {
        folio_doc_t d = { 0 };
        folio_status_t st = folio_reader_next(r, &d, why, sizeof why);
        if (st == FOLIO_EOF) break;
        if (st != FOLIO_OK) { fprintf(stderr, "%s: %s\n", d.origin, why); folio_doc_clear(&d); return 1; }
        double t1 = folio_now(), c1 = cpu_now();
        folio_status_t a = folio_doc_analyze(&d);
        double t2 = folio_now(), c2 = cpu_now();
        long peak = folio_peak_rss_kb();
        printf("{\"file\":\"%s\",\"mb\":%.1f,\"analyze\":\"%s\",\"tokens\":%u,\"sentences\":%u,\"sections\":%u,"
               "\"read_s\":%.2f,\"analyze_s\":%.2f,\"analyze_cpu_s\":%.2f,\"peak_rss_mb\":%.1f,\"base_rss_mb\":%.1f,\"peak_over_text\":%.2f}\n",
               file, d.len / 1e6, folio_status_str(a), d.n_tokens, d.n_sents, d.n_sections, t1 - t0, t2 - t1, c2 - c1,
               peak / 1024.0, base / 1024.0, (peak - base) * 1024.0 / (double)d.len);
        folio_doc_clear(&d);
        t0 = folio_now();
    }
    folio_reader_destroy(&r);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "speed")) return speed(argc - 2, argv + 2);
    if (argc == 3 && !strcmp(argv[1], "memory")) return memory(argv[2]);
    fprintf(stderr, "usage: shard_bench speed FILE... | shard_bench memory FILE\n");
    return 2;
}
