/* cli/cmd_attn.c — `folio eval pattern` (pattern quality against dense
 * attention on real documents) and `folio bench attn` (kernel speed, useful
 * GFLOP/s against the machine's measured FMA peak). */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../attn/attn.h"
#include "../attn/attn_cuda.h"
#include "../shard/shard.h"
#include "../attn/attn.h" /* FOLIO_EMBED_SEED, folio_idf: encode exactly as ingest does */

/* ================================================================ eval pattern */

static const char *const EVAL_USAGE =
    "usage: folio eval pattern --data F.jsonl [--patterns A;B;...] [--max-tokens N] [--docs N] [--threads T]\n"
    "\n"
    "For each attention pattern, on the documents of F.jsonl ({\"id\",\"text\",...} per\n"
    "line; each cut to its first N tokens, default 16384, where dense attention is\n"
    "affordable), compares the first encoder layer with dense attention:\n"
    "  keys/query   mean and max keys (tokens + summary nodes) per query\n"
    "  fidelity     1 - ||O_sparse - O_dense|| / ||O_dense||  (token-weighted mean)\n"
    "  recall       share of the dense softmax mass on keys the pattern covers\n"
    "               (a summary node covers its tokens)\n"
    "  recall_fine  the same counting only window tokens and block-level nodes\n"
    "  ms           time of the sparse layer (summaries + selection + kernel)\n"
    "Token vectors: the ingest embedding with IDF from the file's own documents.\n"
    "Default patterns: local;longt5;hier;hier+topk;hier+topk,budget=512\n"
    "Output: one JSON line per pattern on stdout, a table on stderr.\n";

typedef struct {
    char *text;
    size_t len;
    folio_span_t *toks;
    uint32_t n;
    uint64_t *stems;
} edoc_t;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* df of a stem hash by binary search in the sorted (unique-per-doc) list */
static uint64_t df_of(const uint64_t *all, size_t n_all, uint64_t key)
{
    size_t lo = 0, hi = n_all;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (all[mid] < key) lo = mid + 1;
        else hi = mid;
    }
    size_t a = lo;
    hi = n_all;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (all[mid] <= key) lo = mid + 1;
        else hi = mid;
    }
    return lo - a;
}

typedef struct {
    folio_pattern_t p;
    char spec[FOLIO_PATTERN_SPEC_MAX];
    double tokens, keys_sum, keys_max, fid_sum, rec_sum, recf_sum, ms, ms_dense;
    uint32_t docs;
} eres_t;

int cmd_eval_pattern(int argc, char **argv)
{
    const char *data = NULL, *patterns = "local;longt5;hier;hier+topk;hier+topk,budget=512";
    long max_tokens = 16384, max_docs = -1, threads = 0;
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'},      {"patterns", required_argument, 0, 'p'},
        {"max-tokens", required_argument, 0, 'm'}, {"docs", required_argument, 0, 'n'},
        {"threads", required_argument, 0, 't'},   {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "d:p:m:n:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'p': patterns = optarg; break;
        case 'm':
            if (!cli_parse_long(optarg, 1, 1 << 20, &max_tokens))
                return cli_usage_error("eval pattern", "--max-tokens '%s': expected an integer in 1 .. 1048576", optarg);
            break;
        case 'n':
            if (!cli_parse_long(optarg, 1, 1L << 30, &max_docs))
                return cli_usage_error("eval pattern", "--docs '%s': expected a positive integer", optarg);
            break;
        case 't':
            if (!cli_parse_long(optarg, 0, 4096, &threads))
                return cli_usage_error("eval pattern", "--threads '%s': expected an integer in 0 .. 4096", optarg);
            break;
        case 'h': fputs(EVAL_USAGE, stdout); return FOLIO_EXIT_OK;
        default: return cli_usage_error("eval pattern", "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error("eval pattern", "unexpected argument '%s'", argv[optind]);
    if (!data) return cli_usage_error("eval pattern", "--data F.jsonl is required");

    /* patterns */
    eres_t *res = NULL;
    int np = 0;
    {
        char *list = strdup(patterns), *save = NULL;
        if (!list) return FOLIO_EXIT_FAIL;
        for (char *s = strtok_r(list, ";", &save); s; s = strtok_r(NULL, ";", &save)) {
            eres_t *nr = realloc(res, sizeof *res * (np + 1));
            if (!nr) { free(list); free(res); return FOLIO_EXIT_FAIL; }
            res = nr;
            memset(&res[np], 0, sizeof *res);
            char err[256];
            if (folio_pattern_parse(s, &res[np].p, err, sizeof err) != FOLIO_OK) {
                free(list);
                free(res);
                return cli_usage_error("eval pattern", "--patterns: %s", err);
            }
            folio_pattern_print(&res[np].p, res[np].spec, sizeof res[np].spec);
            np++;
        }
        free(list);
        if (!np) { free(res); return cli_usage_error("eval pattern", "--patterns: no pattern given"); }
    }

    /* documents */
    FILE *f = fopen(data, "r");
    if (!f) {
        fprintf(stderr, "folio eval pattern: cannot open '%s': %s\n", data, strerror(errno));
        free(res);
        return FOLIO_EXIT_FAIL;
    }
    edoc_t *docs = NULL;
    size_t nd = 0, lineno = 0, bad = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t r;
    int rc = FOLIO_EXIT_OK;
    while ((max_docs < 0 || (long)nd < max_docs) && (r = getline(&line, &cap, f)) > 0) {
        lineno++;
        size_t ll = (size_t)r;
        while (ll && (line[ll - 1] == '\n' || line[ll - 1] == '\r')) ll--;
        if (!ll) continue;
        folio_json_t *v = NULL;
        char err[256];
        if (folio_json_parse(line, ll, &v, err, sizeof err) != FOLIO_OK) {
            fprintf(stderr, "folio eval pattern: %s:%zu: malformed JSON line skipped: %s\n", data, lineno, err);
            bad++;
            continue;
        }
        size_t tl;
        const char *t = folio_json_get_str(v, "text", &tl);
        if (!t) t = folio_json_get_str(v, "contents", &tl);
        char reason[256];
        if (!t || folio_utf8_validate(t, tl, reason, sizeof reason) != FOLIO_OK) {
            fprintf(stderr, "folio eval pattern: %s:%zu: skipped: %s\n", data, lineno,
                    t ? reason : "no \"text\" string");
            folio_json_free(&v);
            bad++;
            continue;
        }
        edoc_t e = {0};
        e.text = malloc(tl + 1);
        if (!e.text) { folio_json_free(&v); rc = FOLIO_EXIT_FAIL; break; }
        memcpy(e.text, t, tl + 1);
        e.len = tl;
        folio_json_free(&v);
        if (folio_tokenize(e.text, e.len, &e.toks, &e.n) != FOLIO_OK || e.n == 0) {
            fprintf(stderr, "folio eval pattern: %s:%zu: skipped: no tokens\n", data, lineno);
            free(e.text);
            free(e.toks);
            bad++;
            continue;
        }
        if (e.n > (uint32_t)max_tokens) e.n = (uint32_t)max_tokens;
        e.stems = malloc(sizeof(uint64_t) * e.n);
        if (!e.stems) { free(e.text); free(e.toks); rc = FOLIO_EXIT_FAIL; break; }
        for (uint32_t i = 0; i < e.n; i++) e.stems[i] = folio_stem_hash(e.text, e.toks[i]);
        edoc_t *nd2 = realloc(docs, sizeof *docs * (nd + 1));
        if (!nd2) { free(e.text); free(e.toks); free(e.stems); rc = FOLIO_EXIT_FAIL; break; }
        docs = nd2;
        docs[nd++] = e;
    }
    free(line);
    fclose(f);
    if (rc == FOLIO_EXIT_OK && nd == 0) {
        fprintf(stderr, "folio eval pattern: '%s' has no usable documents\n", data);
        rc = FOLIO_EXIT_FAIL;
    }

    /* document frequencies over the file (stems unique per document) */
    uint64_t *all = NULL;
    size_t n_all = 0;
    if (rc == FOLIO_EXIT_OK) {
        size_t tot = 0;
        for (size_t i = 0; i < nd; i++) tot += docs[i].n;
        all = malloc(sizeof(uint64_t) * (tot + 1));
        if (!all) rc = FOLIO_EXIT_FAIL;
        for (size_t i = 0; all && i < nd; i++) {
            uint64_t *u = all + n_all;
            memcpy(u, docs[i].stems, sizeof(uint64_t) * docs[i].n);
            qsort(u, docs[i].n, sizeof *u, cmp_u64);
            size_t k = 0;
            for (uint32_t j = 0; j < docs[i].n; j++)
                if (!k || u[k - 1] != u[j]) u[k++] = u[j];
            n_all += k;
        }
        if (all) qsort(all, n_all, sizeof *all, cmp_u64);
    }

    fprintf(stderr, "folio eval pattern: %zu documents from %s (%zu lines skipped), first layer vs dense\n", nd, data,
            bad);
    for (size_t di = 0; rc == FOLIO_EXIT_OK && di < nd; di++) {
        edoc_t *e = &docs[di];
        float *w = malloc(sizeof(float) * e->n);
        if (!w) { rc = FOLIO_EXIT_FAIL; break; }
        for (uint32_t i = 0; i < e->n; i++) w[i] = folio_idf(nd, df_of(all, n_all, e->stems[i]));
        float *X = NULL;
        uint32_t Xd = 0;
        folio_dense_stats_t *ds = NULL;
        folio_pattern_t dsp = {0};
        for (int k = 0; k < np && rc == FOLIO_EXIT_OK; k++) {
            folio_pattern_t *p = &res[k].p;
            uint32_t d = folio_pattern_dim(p);
            if (d != Xd) {
                free(X);
                X = malloc(sizeof(float) * e->n * d);
                if (!X || folio_embed(e->text, e->toks, w, e->n, d, FOLIO_EMBED_SEED, X) != FOLIO_OK) {
                    rc = FOLIO_EXIT_FAIL;
                    break;
                }
                Xd = d;
                folio_dense_stats_destroy(&ds);
            }
            if (!ds || dsp.heads != p->heads || dsp.head_dim != p->head_dim || dsp.block != p->block ||
                dsp.beta != p->beta) {
                folio_dense_stats_destroy(&ds);
                if (folio_dense_stats_create(X, e->n, p->heads, p->head_dim, p->block, folio_pattern_scale(p),
                                             (int)threads, &ds) != FOLIO_OK) {
                    rc = FOLIO_EXIT_FAIL;
                    break;
                }
                dsp = *p;
            }
            folio_pattern_quality_t q;
            if (folio_pattern_quality(p, X, e->n, ds, (int)threads, &q) != FOLIO_OK) {
                fprintf(stderr, "folio eval pattern: document %zu: pattern %s failed\n", di, res[k].spec);
                rc = FOLIO_EXIT_FAIL;
                break;
            }
            eres_t *R = &res[k];
            R->docs++;
            R->tokens += e->n;
            R->keys_sum += q.keys_mean * e->n;
            if (q.keys_max > R->keys_max) R->keys_max = q.keys_max;
            R->fid_sum += q.fidelity * e->n;
            R->rec_sum += q.recall * e->n;
            R->recf_sum += q.recall_fine * e->n;
            R->ms += q.ms_sparse;
            R->ms_dense += q.ms_dense;
        }
        folio_dense_stats_destroy(&ds);
        free(X);
        free(w);
    }
    if (rc == FOLIO_EXIT_OK) {
        fprintf(stderr, "%-72s %8s %8s %9s %8s %8s %9s %9s\n", "pattern", "keys/q", "max", "fidelity", "recall",
                "rec_fine", "ms", "ms_dense");
        for (int k = 0; k < np; k++) {
            eres_t *R = &res[k];
            double T = R->tokens > 0 ? R->tokens : 1;
            printf("{\"pattern\":\"%s\",\"docs\":%u,\"tokens\":%.0f,\"keys_per_query_mean\":%.2f,"
                   "\"keys_per_query_max\":%.0f,\"fidelity\":%.6f,\"recall\":%.6f,\"recall_fine\":%.6f,"
                   "\"ms\":%.3f,\"ms_dense\":%.3f}\n",
                   R->spec, R->docs, R->tokens, R->keys_sum / T, R->keys_max, R->fid_sum / T, R->rec_sum / T,
                   R->recf_sum / T, R->ms, R->ms_dense);
            fprintf(stderr, "%-72s %8.1f %8.0f %9.4f %8.4f %8.4f %9.1f %9.1f\n", R->spec, R->keys_sum / T,
                    R->keys_max, R->fid_sum / T, R->rec_sum / T, R->recf_sum / T, R->ms, R->ms_dense);
        }
        fflush(stdout);
    }
    for (size_t i = 0; i < nd; i++) {
        free(docs[i].text);
        free(docs[i].toks);
        free(docs[i].stems);
    }
    free(docs);
    free(all);
    free(res);
    return rc;
}

/* ================================================================ bench attn */

static const char *const BENCH_USAGE =
    "usage: folio bench attn [--backend cpu|cuda] [--n N] [--pattern SPEC] [--threads T] [--reps R]\n"
    "\n"
    "Times one attention layer over a random document of N tokens (default 65536)\n"
    "and prints one JSON line: keys/query, ms per layer (kernel alone, and with the\n"
    "block summaries + summary-key selection), also in CPU time (cpu_ms_*: robust\n"
    "when other jobs share the machine), useful GFLOP/s (4*d_h*pairs actually\n"
    "attended, summed over heads), the machine's single-core FMA peak measured by a\n"
    "built-in probe, and the ratio per core.  Median of R repetitions (default 3).\n"
    "sel_hash: a hash of the summary keys selected for the input (equal across\n"
    "builds whose selection is the same).\n";

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int cmd_bench(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "attn")) {
        bool help = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
        fputs("usage: folio bench attn [options]   (folio bench attn --help)\n", help ? stdout : stderr);
        return help ? FOLIO_EXIT_OK : FOLIO_EXIT_USAGE;
    }
    argc--;
    argv++;
    const char *backend = "cpu", *spec = NULL;
    long n = 65536, threads = 0, reps = 3;
    static const struct option opts[] = {
        {"backend", required_argument, 0, 'b'}, {"n", required_argument, 0, 'n'},
        {"pattern", required_argument, 0, 'p'}, {"threads", required_argument, 0, 't'},
        {"reps", required_argument, 0, 'r'},    {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "b:n:p:t:r:h", opts, NULL)) != -1) {
        switch (c) {
        case 'b': backend = optarg; break;
        case 'n':
            if (!cli_parse_long(optarg, 1, 1L << 28, &n))
                return cli_usage_error("bench attn", "--n '%s': expected an integer in 1 .. 2^28", optarg);
            break;
        case 'p': spec = optarg; break;
        case 't':
            if (!cli_parse_long(optarg, 0, 4096, &threads))
                return cli_usage_error("bench attn", "--threads '%s': expected an integer in 0 .. 4096", optarg);
            break;
        case 'r':
            if (!cli_parse_long(optarg, 1, 1000, &reps))
                return cli_usage_error("bench attn", "--reps '%s': expected an integer in 1 .. 1000", optarg);
            break;
        case 'h': fputs(BENCH_USAGE, stdout); return FOLIO_EXIT_OK;
        default: return cli_usage_error("bench attn", "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error("bench attn", "unexpected argument '%s'", argv[optind]);
    if (strcmp(backend, "cpu") && strcmp(backend, "cuda"))
        return cli_usage_error("bench attn", "--backend '%s': expected cpu or cuda", backend);
    folio_pattern_t p0, p;
    char err[256];
    if (folio_pattern_parse(spec, &p0, err, sizeof err) != FOLIO_OK)
        return cli_usage_error("bench attn", "--pattern: %s", err);
    if (folio_pattern_resolve(&p0, (uint64_t)n, &p) != FOLIO_OK) return FOLIO_EXIT_FAIL;
    char pstr[FOLIO_PATTERN_SPEC_MAX];
    folio_pattern_print(&p, pstr, sizeof pstr);
    folio_hier_t h;
    if (folio_hier_init(&h, (uint64_t)n, p.block, p.group) != FOLIO_OK) return FOLIO_EXIT_FAIL;
    const uint32_t H = p.heads, dh = p.head_dim, d = H * dh, nb = h.count[1], B = p.block;
    const int s_max = (int)folio_pattern_summary_max(&p, (uint64_t)n);
    const uint64_t W = p.kind == FOLIO_PATTERN_DENSE ? (uint64_t)n : p.window;

    if (!strcmp(backend, "cuda")) {
        /* ---- CUDA hook: the GPU backend's own timing harness (attn/attn_cuda.h) */
#ifdef FOLIO_HAVE_CUDA
        if (!folio_cuda_available()) {
            fprintf(stderr, "folio bench attn: --backend cuda: no usable CUDA device\n");
            return FOLIO_EXIT_FAIL;
        }
        int s_sum = s_max; /* summary keys per (block, head) of this pattern */
        folio_attn_cuda_bench_t cb;
        folio_status_t cst = folio_attn_bench_cuda(n, (int)H, (int)dh, (int)W, s_sum, 0, 1, (int)reps, &cb);
        if (cst != FOLIO_OK) {
            fprintf(stderr, "folio bench attn: --backend cuda: %s\n", folio_status_str(cst));
            return FOLIO_EXIT_FAIL;
        }
        /* the summary-key selection of one layer (routing is O(blocks^2)) */
        double sel_ms = 0, route_ms[4] = {0, 0, 0, 0};
        cst = folio_cuda_bench_select(&p, n, (int)reps, &sel_ms, route_ms);
        if (cst != FOLIO_OK) {
            fprintf(stderr, "folio bench attn: --backend cuda: selection: %s\n", folio_status_str(cst));
            return FOLIO_EXIT_FAIL;
        }
        printf("{\"backend\":\"cuda\",\"kernel\":\"%s\",\"n\":%ld,\"pattern\":\"%s\",\"ms_median\":%.4f,\"ms_min\":%.4f,"
               "\"pairs\":%.0f,\"tflops_useful\":%.3f,\"tflops_computed\":%.3f,\"select_ms\":%.3f,"
               "\"route_ms\":%.3f,\"route_ms_fp32_tiled\":%.3f,\"route_ms_rowwise\":%.3f,"
               "\"route_ms_wmma\":%.3f}\n",
               folio_cuda_attn_kernel_name(), n, pstr, cb.ms_median, cb.ms_min, cb.pairs, cb.tflops_useful,
               cb.tflops_computed, sel_ms,
               route_ms[0], route_ms[1], route_ms[2], route_ms[3]);
        return FOLIO_EXIT_OK;
#else
        fprintf(stderr, "folio bench attn: --backend cuda: this binary was built without CUDA "
                        "(rebuild with -DFOLIO_CUDA=ON on a machine with nvcc)\n");
        return FOLIO_EXIT_FAIL;
#endif
    }

    int nth = threads > 0 ? (int)threads : omp_get_max_threads();
    float *X = malloc(sizeof(float) * (size_t)n * d), *Xo = malloc(sizeof(float) * (size_t)n * d);
    float *O = malloc(sizeof(float) * (size_t)n * d);
    float *nodes = malloc(sizeof(float) * (size_t)h.n_nodes * d);
    int32_t *sel = malloc(sizeof(int32_t) * (size_t)nb * H * (s_max > 0 ? s_max : 1));
    int32_t *sel_n = calloc((size_t)nb * H, sizeof(int32_t));
    int64_t *mass = calloc(h.n_nodes, sizeof(int64_t));
    float *bias = p.sumbias ? malloc(sizeof(float) * (h.n_nodes + 1)) : NULL;
    if (bias) folio_hier_log_sizes(&h, bias);
    double *tkc = malloc(sizeof(double) * reps), *tsc = malloc(sizeof(double) * reps), *tlc = malloc(sizeof(double) * reps);
    double *tk = malloc(sizeof(double) * reps), *ts = malloc(sizeof(double) * reps), *tl = malloc(sizeof(double) * reps);
    int rc = FOLIO_EXIT_FAIL;
    if (!X || !Xo || !O || !nodes || !sel || !sel_n || !mass || !tk || !ts || !tl || !tkc || !tsc || !tlc) {
        fprintf(stderr, "folio bench attn: out of memory for n=%ld\n", n);
        goto out;
    }
    /* a layer input: random, per-head RMS-normalized like the encoder's */
    uint64_t seed = 12345;
    for (size_t i = 0; i < (size_t)n * d; i++)
        X[i] = (float)((double)(folio_splitmix64(&seed) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    folio_rmsnorm_heads(X, (uint64_t)n, H, dh);
    /* touch the outputs once: the first write to fresh pages costs the OS's
     * page zeroing (~0.3 s per GB), which is not the kernel's time; the
     * selection's output too (36 MB at 1M: with --reps 1 only the 1M run
     * paid it, the 65k median did not) */
    memset(O, 0, sizeof(float) * (size_t)n * d);
    memset(Xo, 0, sizeof(float) * (size_t)n * d);
    memset(sel, 0, sizeof(int32_t) * (size_t)nb * H * (s_max > 0 ? s_max : 1));
    memset(sel_n, 0, sizeof(int32_t) * (size_t)nb * H);
    for (long rep = 0; rep < reps; rep++) {
        double t0 = folio_now(), c0 = cpu_now();
        if (folio_attn_block_sums(X, 0, (uint64_t)n, (uint64_t)n, B, d, nodes) != FOLIO_OK) goto out;
        if (folio_hier_build_upper(&h, d, nodes) != FOLIO_OK) goto out;
        if (s_max > 0 && folio_attn_select(&p, &h, nodes, nodes, 0, nb, sel, sel_n, s_max, nth) != FOLIO_OK) goto out;
        double t1 = folio_now(), c1 = cpu_now();
        folio_attn_args_t a = {
            .q = X, .k = X, .v = X, .ld = d, .x0 = 0, .nx = n, .q0 = 0, .q1 = n, .n_doc = n,
            .node_k = nodes, .node_v = nodes, .ld_nodes = d, .n_nodes = h.n_nodes,
            .sel = s_max > 0 ? sel : NULL, .sel_n = s_max > 0 ? sel_n : NULL, .s_max = s_max,
            .out = O, .ld_out = d, .H = (int)H, .d_h = (int)dh, .B = (int)B,
            .W = (int)(W < (1u << 30) ? W : (1u << 30)), .scale = folio_pattern_scale(&p), .threads = nth,
            .node_bias = bias,
        };
        if (folio_attn_sparse_fwd_cpu(&a) != FOLIO_OK) goto out;
        double t2 = folio_now(), c2 = cpu_now();
        tkc[rep] = (c2 - c1) * 1e3;
        /* the full layer as the encoder runs it (kernel with node_mass, residual, norm) */
        if (folio_encoder_layer(&p, &h, NULL, X, 0, (uint64_t)n, 0, (uint64_t)n, nodes, s_max > 0 ? sel : NULL,
                                s_max > 0 ? sel_n : NULL, s_max, Xo, mass, nth) != FOLIO_OK)
            goto out;
        double t3 = folio_now(), c3 = cpu_now();
        tsc[rep] = (c1 - c0) * 1e3;
        tlc[rep] = (c1 - c0 + c3 - c2) * 1e3;
        ts[rep] = (t1 - t0) * 1e3;
        tk[rep] = (t2 - t1) * 1e3;
        tl[rep] = (t1 - t0 + t3 - t2) * 1e3;
    }
    /* pairs actually attended, summed over heads */
    double pairs = 0;
    for (uint32_t qb = 0; qb < nb; qb++) {
        uint64_t i0 = (uint64_t)qb * B, i1 = i0 + B < (uint64_t)n ? i0 + B : (uint64_t)n;
        double win = 0;
        for (uint64_t i = i0; i < i1; i++) {
            uint64_t w0 = i > W ? i - W : 0, w1 = i + W + 1 < (uint64_t)n ? i + W + 1 : (uint64_t)n;
            win += (double)(w1 - w0);
        }
        for (uint32_t hh = 0; hh < H; hh++) pairs += win + (double)(i1 - i0) * (s_max > 0 ? sel_n[qb * H + hh] : 0);
    }
    /* the selection, hashed (FNV-1a over sel_n and the selected nodes in
     * order): a change to the routing's arithmetic must leave it equal */
    uint64_t sel_hash = 0xcbf29ce484222325ull;
    for (size_t i = 0; s_max > 0 && i < (size_t)nb * H; i++) {
        sel_hash = (sel_hash ^ (uint32_t)sel_n[i]) * 0x100000001b3ull;
        for (int s = 0; s < sel_n[i]; s++) sel_hash = (sel_hash ^ (uint32_t)sel[i * s_max + s]) * 0x100000001b3ull;
    }
    qsort(tk, reps, sizeof *tk, cmp_dbl);
    qsort(ts, reps, sizeof *ts, cmp_dbl);
    qsort(tl, reps, sizeof *tl, cmp_dbl);
    qsort(tkc, reps, sizeof *tkc, cmp_dbl);
    qsort(tsc, reps, sizeof *tsc, cmp_dbl);
    qsort(tlc, reps, sizeof *tlc, cmp_dbl);
    double mk = tk[reps / 2], msel = ts[reps / 2], ml = tl[reps / 2];
    double flops = 4.0 * dh * pairs;
    double gk = flops / (mk * 1e-3) / 1e9, gl = flops / (ml * 1e-3) / 1e9;
    double peak = folio_fma_peak_gflops();
    double load1 = -1; /* the machine's load, to judge the wall-clock figures */
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) {
        if (fscanf(la, "%lf", &load1) != 1) load1 = -1;
        fclose(la);
    }
    /* per core from CPU time: robust when other jobs share the machine */
    double gcpu = flops / (tkc[reps / 2] * 1e-3) / 1e9;
    printf("{\"backend\":\"cpu\",\"n\":%ld,\"pattern\":\"%s\",\"keys_per_query\":%.2f,\"keys_bound\":%llu,"
           "\"threads\":%d,\"reps\":%ld,\"ms_kernel\":%.3f,\"ms_select\":%.3f,\"ms_per_layer\":%.3f,"
           "\"gflops_useful_kernel\":%.2f,\"gflops_useful_layer\":%.2f,\"peak_fma_gflops_per_core\":%.2f,"
           "\"ratio_per_core_kernel\":%.3f,\"ratio_per_core_layer\":%.3f,\"cpu_ms_kernel\":%.3f,"
           "\"gflops_useful_per_cpu_core_kernel\":%.2f,\"ratio_cpu_kernel\":%.3f,\"cpu_ms_select\":%.3f,"
           "\"cpu_ms_per_layer\":%.3f,\"load_avg_1min\":%.2f,\"sel_hash\":\"%016llx\"}\n",
           n, pstr, pairs / ((double)n * H), (unsigned long long)folio_pattern_keys_bound(&p, (uint64_t)n), nth, reps,
           mk, msel, ml, gk, gl, peak, gk / nth / peak, gl / nth / peak, tkc[reps / 2], gcpu, gcpu / peak, tsc[reps / 2],
           tlc[reps / 2], load1, (unsigned long long)sel_hash);
    rc = FOLIO_EXIT_OK;
out:
    free(X); free(Xo); free(O); free(nodes); free(sel); free(sel_n); free(mass); free(tk); free(ts); free(tl); free(tkc); free(tsc); free(tlc); free(bias);
    return rc;
}
