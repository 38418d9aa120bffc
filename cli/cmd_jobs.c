/* cli/cmd_jobs.c — folio summarize, ask, eval summarize, eval qa. */
#define _GNU_SOURCE
#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mpi.h>

#include "cli.h"
#include "jobs/jobs.h"
#include "pipeline/pipeline.h"
#include "store/store.h"

/* ------------------------------------------------------------ helpers */

static int fail_status(folio_status_t st) { return st == FOLIO_ERR_USAGE ? FOLIO_EXIT_USAGE : FOLIO_EXIT_FAIL; }

static void print_json_str(FILE *f, const char *s, size_t n) { folio_json_write_str(f, s, n); }

/* Opens the store read-only with a clear message when it is missing. */
static folio_status_t open_store_ro(const char *cmd, const char *db, folio_store_t **s, folio_store_reader_t **r)
{
    struct stat sb;
    if (stat(db, &sb) != 0) {
        fprintf(stderr, "folio %s: no store at '%s' (run 'folio ingest --db %s INPUT...' first)\n", cmd, db, db);
        return FOLIO_ERR_NOT_FOUND;
    }
    folio_store_opts_t o = {.readonly = true};
    folio_status_t st = folio_store_open(db, &o, s);
    if (st != FOLIO_OK) {
        fprintf(stderr, "folio %s: cannot open store '%s': %s\n", cmd, db, folio_status_str(st));
        return st;
    }
    st = folio_store_reader_open(*s, r);
    if (st != FOLIO_OK) {
        fprintf(stderr, "folio %s: cannot read store '%s': %s\n", cmd, db, folio_status_str(st));
        folio_store_close(s);
    }
    return st;
}

/* ------------------------------------------------------------ summarize */

static const char *const SUMMARIZE_HELP =
    "usage: folio summarize [--db P] (--doc ID | --all) [--words N | --sentences N]\n"
    "                       [--json] [--out F.jsonl]\n"
    "\n"
    "Extractive summary of a stored document: whole sentences chosen by salience,\n"
    "centrality, similarity to the section and document summaries, position and\n"
    "section coverage, with redundancy control (MMR); printed in document order.\n"
    "\n"
    "  --db P          the store (default $FOLIO_DB, else ./folio.lmdb)\n"
    "  --doc ID        the document to summarize\n"
    "  --all           every document of the store; run under mpirun to split the\n"
    "                  documents over ranks; summaries are written back to the store\n"
    "  --words N       budget in whitespace words (default 200); never exceeded\n"
    "  --sentences N   budget in sentences (instead of --words)\n"
    "  --json          one JSON object per document on stdout:\n"
    "                  {\"doc\":ID,\"sentences\":[{\"index\",\"start\",\"end\",\"text\",\"score\"}...]}\n"
    "                  (start/end: byte offsets into the original text)\n"
    "  --out F.jsonl   with --all: also write the JSON lines to F.jsonl\n"
    "\n"
    "Exit status: 0 ok, 1 failure (unknown --doc, unreadable store), 2 usage error.\n";

int cmd_summarize(int argc, char **argv)
{
    const char *db = cli_default_db(), *doc_id = NULL, *outp = NULL;
    bool all = false, json = false;
    folio_summarize_cfg_t cfg;
    folio_summarize_cfg_default(&cfg);
    bool have_words = false, have_sents = false;
    static const struct option opts[] = {
        {"db", required_argument, 0, 'd'},    {"doc", required_argument, 0, 'D'},
        {"all", no_argument, 0, 'a'},         {"words", required_argument, 0, 'w'},
        {"sentences", required_argument, 0, 's'}, {"json", no_argument, 0, 'j'},
        {"out", required_argument, 0, 'o'},   {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        long v;
        switch (c) {
        case 'd': db = optarg; break;
        case 'D': doc_id = optarg; break;
        case 'a': all = true; break;
        case 'w':
            if (!cli_parse_long(optarg, 1, 1000000, &v))
                return cli_usage_error("summarize", "--words needs a number from 1 to 1000000, not '%s'", optarg);
            cfg.max_words = (uint32_t)v;
            have_words = true;
            break;
        case 's':
            if (!cli_parse_long(optarg, 1, 1000000, &v))
                return cli_usage_error("summarize", "--sentences needs a number from 1 to 1000000, not '%s'", optarg);
            cfg.max_sents = (uint32_t)v;
            have_sents = true;
            break;
        case 'j': json = true; break;
        case 'o': outp = optarg; break;
        case 'h': fputs(SUMMARIZE_HELP, stdout); return FOLIO_EXIT_OK;
        default: return cli_usage_error("summarize", "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error("summarize", "unexpected argument '%s'", argv[optind]);
    if (!doc_id == !all) return cli_usage_error("summarize", "give exactly one of --doc ID and --all");
    if (have_words && have_sents) return cli_usage_error("summarize", "give --words or --sentences, not both");
    if (have_sents) cfg.max_words = 0;
    if (outp && !all) return cli_usage_error("summarize", "--out goes with --all");

    if (all) {
        MPI_Comm comm;
        int rank, size;
        int early = cli_mpi_start("summarize", &argc, &argv, &comm, &rank, &size);
        if (early) return early;
        FILE *jf = NULL;
        folio_status_t st = FOLIO_OK;
        if (rank == 0 && outp) {
            jf = fopen(outp, "w");
            if (!jf) {
                folio_log(FOLIO_LOG_ERROR, "cannot write %s: %m", outp);
                st = FOLIO_ERR_IO;
            }
        }
        int bad = st != FOLIO_OK;
        MPI_Bcast(&bad, 1, MPI_INT, 0, comm);
        uint64_t n = 0;
        if (!bad) st = folio_summarize_all(db, &cfg, comm, jf, json && rank == 0 ? stdout : NULL, &n);
        if (jf && fclose(jf) != 0 && st == FOLIO_OK) st = FOLIO_ERR_IO;
        if (rank == 0) {
            if (st == FOLIO_OK && !json)
                fprintf(stderr, "folio summarize: %llu documents summarized into %s\n", (unsigned long long)n, db);
            else if (st != FOLIO_OK)
                fprintf(stderr, "folio summarize: --all failed: %s\n", folio_status_str(st));
        }
        int rc = st == FOLIO_OK ? FOLIO_EXIT_OK : FOLIO_EXIT_FAIL;
        cli_mpi_end(&comm, false, rc); /* folio_summarize_all already agreed on the outcome */
        return rc;
    }

    folio_store_t *s = NULL;
    folio_store_reader_t *r = NULL;
    folio_status_t st = open_store_ro("summarize", db, &s, &r);
    if (st != FOLIO_OK) return FOLIO_EXIT_FAIL;
    folio_stored_doc_t d;
    const char *canon = NULL;
    st = folio_store_resolve_id(r, doc_id, &canon);
    if (st == FOLIO_OK && strcmp(canon, doc_id))
        fprintf(stderr, "folio summarize: '%s' has the same content as '%s'\n", doc_id, canon);
    if (st == FOLIO_OK) st = folio_store_get_doc(r, canon, &d);
    if (st != FOLIO_OK) {
        if (st == FOLIO_ERR_NOT_FOUND) fprintf(stderr, "folio summarize: no document '%s' in %s\n", doc_id, db);
        else fprintf(stderr, "folio summarize: cannot read '%s': %s\n", doc_id, folio_status_str(st));
        folio_store_reader_close(&r);
        folio_store_close(&s);
        return FOLIO_EXIT_FAIL;
    }
    folio_doc_view_t v;
    folio_doc_view_from_stored(&d, &v);
    folio_doc_feats_t *f = NULL;
    folio_pick_t *p = NULL;
    uint32_t n = 0;
    st = folio_doc_feats_create(&v, &f);
    if (st == FOLIO_OK) st = folio_summarize(&v, f, &cfg, &p, &n);
    if (st == FOLIO_OK) {
        if (json) {
            folio_buf_t b = {0};
            st = folio_summary_json(&v, p, n, &b);
            if (st == FOLIO_OK) printf("%s\n", b.data);
            folio_buf_free(&b);
        } else {
            for (uint32_t i = 0; i < n; i++) {
                fwrite(v.text + p[i].start, 1, p[i].end - p[i].start, stdout);
                fputc('\n', stdout);
            }
            if (n == 0) fprintf(stderr, "folio summarize: no sentence of '%s' fits the budget\n", doc_id);
        }
    } else {
        fprintf(stderr, "folio summarize: '%s': %s\n", doc_id, folio_status_str(st));
    }
    free(p);
    folio_doc_feats_destroy(&f);
    folio_store_reader_close(&r);
    folio_store_close(&s);
    return st == FOLIO_OK ? FOLIO_EXIT_OK : fail_status(st);
}

/* ------------------------------------------------------------ ask */

static const char *const ASK_HELP =
    "usage: folio ask [--db P] [--doc ID] [--top K] [--method folio|bm25] [--json] QUESTION\n"
    "\n"
    "Finds the sentences that answer QUESTION, in one document (--doc) or across\n"
    "the whole store (BM25 over the stored index picks candidate documents, then\n"
    "their sentences are ranked by fused BM25, similarity and context).\n"
    "\n"
    "  --db P       the store (default $FOLIO_DB, else ./folio.lmdb)\n"
    "  --doc ID     search only this document\n"
    "  --top K      answers to return (default 5)\n"
    "  --method M   folio (default: fused) or bm25 (plain BM25 over sentences)\n"
    "  --json       {\"question\":Q,\"answers\":[{\"doc\",\"start\",\"end\",\"text\",\"score\"}...]}\n"
    "\n"
    "Exit status: 0 ok (also when nothing matches), 1 failure, 2 usage error.\n";

int cmd_ask(int argc, char **argv)
{
    const char *db = cli_default_db(), *doc_id = NULL;
    long top = 5;
    bool json = false;
    folio_ask_cfg_t cfg;
    folio_ask_cfg_default(&cfg);
    static const struct option opts[] = {
        {"db", required_argument, 0, 'd'},  {"doc", required_argument, 0, 'D'},
        {"top", required_argument, 0, 'k'}, {"json", no_argument, 0, 'j'},
        {"method", required_argument, 0, 'm'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'D': doc_id = optarg; break;
        case 'k':
            if (!cli_parse_long(optarg, 1, 1000, &top))
                return cli_usage_error("ask", "--top needs a number from 1 to 1000, not '%s'", optarg);
            break;
        case 'j': json = true; break;
        case 'm':
            if (!strcmp(optarg, "folio")) cfg.method = FOLIO_ASK_FOLIO;
            else if (!strcmp(optarg, "bm25")) cfg.method = FOLIO_ASK_BM25;
            else return cli_usage_error("ask", "--method must be folio or bm25, not '%s'", optarg);
            break;
        case 'h': fputs(ASK_HELP, stdout); return FOLIO_EXIT_OK;
        default: return cli_usage_error("ask", "unknown option");
        }
    }
    if (optind >= argc) return cli_usage_error("ask", "no QUESTION given");
    /* the question may come as several words: join them */
    folio_buf_t qb = {0};
    for (int i = optind; i < argc; i++) {
        if (i > optind) folio_buf_append(&qb, " ", 1);
        folio_buf_append(&qb, argv[i], strlen(argv[i]));
    }
    if (!qb.data) folio_buf_append(&qb, "", 0);
    folio_store_t *s = NULL;
    folio_store_reader_t *r = NULL;
    folio_status_t st = open_store_ro("ask", db, &s, &r);
    if (st != FOLIO_OK) { folio_buf_free(&qb); return FOLIO_EXIT_FAIL; }
    folio_query_t *q = NULL;
    folio_answer_t *a = NULL;
    uint32_t n = 0;
    st = folio_query_create(qb.data, qb.len, &q);
    if (st != FOLIO_OK) {
        fprintf(stderr, "folio ask: cannot read the question: %s\n", folio_status_str(st));
        goto out;
    }
    if (folio_query_n_terms(q) == 0) {
        fprintf(stderr, "folio ask: the question has no words to search for\n");
    }
    /* the ids of the answers' documents (docnum -> id) */
    folio_stored_doc_t one;
    bool single = doc_id != NULL;
    if (single) {
        const char *canon = NULL;
        st = folio_store_resolve_id(r, doc_id, &canon);
        if (st == FOLIO_OK) st = folio_store_get_doc(r, canon, &one);
        if (st == FOLIO_ERR_NOT_FOUND) {
            fprintf(stderr, "folio ask: no document '%s' in %s\n", doc_id, db);
            goto out;
        }
        if (st != FOLIO_OK) {
            fprintf(stderr, "folio ask: cannot read '%s': %s\n", doc_id, folio_status_str(st));
            goto out;
        }
        folio_doc_view_t v;
        folio_doc_view_from_stored(&one, &v);
        folio_doc_feats_t *f = NULL;
        st = cfg.method == FOLIO_ASK_FOLIO ? folio_query_encode(q, s, v.d) : FOLIO_OK;
        if (st == FOLIO_OK) st = folio_doc_feats_create(&v, &f);
        if (st == FOLIO_OK) st = folio_ask_doc(&v, f, q, &cfg, (uint32_t)top, &a, &n);
        folio_doc_feats_destroy(&f);
        for (uint32_t i = 0; i < n; i++) a[i].doc = one.docnum;
    } else {
        st = folio_ask_store(s, r, q, &cfg, (uint32_t)top, 0, &a, &n);
    }
    if (st != FOLIO_OK) {
        fprintf(stderr, "folio ask: %s\n", folio_status_str(st));
        goto out;
    }
    if (n == 0 && folio_query_n_terms(q) > 0)
        fprintf(stderr, "folio ask: no sentence matches any word of the question\n");
    if (json) {
        printf("{\"question\":");
        print_json_str(stdout, qb.data, qb.len);
        printf(",\"answers\":[");
    }
    for (uint32_t i = 0; i < n; i++) {
        folio_stored_doc_t d;
        if (single) d = one;
        else if ((st = folio_store_get_doc_by_num(r, a[i].doc, &d)) != FOLIO_OK) {
            fprintf(stderr, "folio ask: cannot read document %u: %s\n", a[i].doc, folio_status_str(st));
            goto out;
        }
        if (json) {
            printf("%s{\"doc\":", i ? "," : "");
            print_json_str(stdout, d.id, d.id_len);
            printf(",\"start\":%u,\"end\":%u,\"text\":", a[i].start, a[i].end);
            print_json_str(stdout, d.text + a[i].start, a[i].end - a[i].start);
            printf(",\"score\":%.6g}", (double)a[i].score);
        } else {
            printf("%u. [%s %u-%u] ", i + 1, d.id, a[i].start, a[i].end);
            fwrite(d.text + a[i].start, 1, a[i].end - a[i].start, stdout);
            printf("\n");
        }
    }
    if (json) printf("]}\n");
out:
    free(a);
    folio_query_destroy(&q);
    folio_store_reader_close(&r);
    folio_store_close(&s);
    folio_buf_free(&qb);
    return st == FOLIO_OK ? FOLIO_EXIT_OK : fail_status(st);
}

/* ------------------------------------------------------------ eval */

/* Removes a temporary store directory (its two LMDB files). */
static void remove_store_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* Ingests data into a fresh temporary store (unless in_memory) and opens a
 * reader on it.  tmpdir receives the path to remove afterwards. */
static folio_status_t eval_prepare(const char *cmd, const char *data, bool in_memory, int *argc, char ***argv,
                                   char *tmpdir, size_t cap, folio_store_t **s, folio_store_reader_t **r)
{
    tmpdir[0] = '\0';
    *s = NULL;
    *r = NULL;
    FILE *probe = fopen(data, "r");
    if (!probe) {
        fprintf(stderr, "folio eval %s: cannot open --data '%s': %m\n", cmd, data);
        return FOLIO_ERR_IO;
    }
    fclose(probe);
    if (in_memory) return FOLIO_OK;
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, cap, "%s/folio-eval-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "folio eval %s: cannot create a temporary store under %s: %m\n", cmd, t && *t ? t : "/tmp");
        tmpdir[0] = '\0';
        return FOLIO_ERR_IO;
    }
    int provided, inited = 0;
    MPI_Initialized(&inited);
    if (!inited && MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "folio eval %s: MPI_Init failed\n", cmd);
        return FOLIO_ERR_MPI;
    }
    /* under mpirun every rank would run the whole evaluation: rank 0 does
     * it, the others return at once */
    int wrank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &wrank);
    if (wrank != 0) return FOLIO_EOF;
    folio_ingest_cfg_t ic = {0};
    ic.db = tmpdir;
    ic.backend = FOLIO_BACKEND_AUTO;
    ic.progress = false;
    ic.comm = MPI_COMM_SELF;
    folio_ingest_counts_t counts = {0};
    const char *inputs[1] = {data};
    folio_log_level_t quiet = FOLIO_LOG_WARN;
    folio_log_set_level(quiet);
    folio_status_t st = folio_ingest_run(&ic, inputs, 1, &counts);
    folio_log_set_level(FOLIO_LOG_INFO);
    if (st != FOLIO_OK) {
        fprintf(stderr, "folio eval %s: ingest of '%s' failed: %s\n", cmd, data, folio_status_str(st));
        return st;
    }
    folio_store_opts_t o = {.readonly = true};
    st = folio_store_open(tmpdir, &o, s);
    if (st == FOLIO_OK) st = folio_store_reader_open(*s, r);
    if (st != FOLIO_OK) fprintf(stderr, "folio eval %s: cannot read the temporary store: %s\n", cmd, folio_status_str(st));
    return st;
}

static void eval_finish(const char *tmpdir, folio_store_t **s, folio_store_reader_t **r)
{
    folio_store_reader_close(r);
    folio_store_close(s);
    if (tmpdir[0]) remove_store_dir(tmpdir);
    int inited = 0, fin = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&fin);
    if (inited && !fin) MPI_Finalize();
}

static const char *const EVAL_SUM_HELP =
    "usage: folio eval summarize --data F.jsonl [--words N] [--details FILE] [--memory]\n"
    "\n"
    "Summarizes every row {\"id\",\"title\",\"text\",\"summary\"} of F.jsonl with the\n"
    "default method and prints {\"rouge1\":..,\"rouge2\":..,\"rougeLsum\":..,\"docs\":N}:\n"
    "mean ROUGE F1 x 100 by the rouge_score rules (lowercase, [^a-z0-9] to spaces,\n"
    "Porter stemming of tokens longer than 3 chars, ROUGE-Lsum over newline-split\n"
    "sentences), each summary cut to N words (default 200), references uncut.\n"
    "\n"
    "  --data F       the data set (JSONL)\n"
    "  --words N      summary budget and cut (default 200)\n"
    "  --details F    one JSON line per document: {\"id\",\"summary\",...} where\n"
    "                 summary is the sentences joined by newlines (uncut)\n"
    "  --memory       analyze the rows in memory instead of ingesting them into a\n"
    "                 temporary store (no encoder vectors or salience; faster)\n";

int cmd_eval_summarize(int argc, char **argv)
{
    const char *data = NULL, *details = NULL;
    bool memory = false;
    folio_summarize_cfg_t cfg;
    folio_summarize_cfg_default(&cfg);
    static const struct option opts[] = {
        {"data", required_argument, 0, 'D'}, {"words", required_argument, 0, 'w'},
        {"details", required_argument, 0, 'x'}, {"memory", no_argument, 0, 'm'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        long v;
        switch (c) {
        case 'D': data = optarg; break;
        case 'w':
            if (!cli_parse_long(optarg, 1, 1000000, &v))
                return cli_usage_error("eval summarize", "--words needs a number from 1 to 1000000, not '%s'", optarg);
            cfg.max_words = (uint32_t)v;
            break;
        case 'x': details = optarg; break;
        case 'm': memory = true; break;
        case 'h': fputs(EVAL_SUM_HELP, stdout); return FOLIO_EXIT_OK;
        default: return cli_usage_error("eval summarize", "unknown option");
        }
    }
    if (!data) return cli_usage_error("eval summarize", "--data F.jsonl is required");
    if (optind < argc) return cli_usage_error("eval summarize", "unexpected argument '%s'", argv[optind]);
    /* tuning knobs for development (not part of the contract) */
    const char *e;
    if ((e = getenv("FOLIO_SUM_W"))) {
        sscanf(e, "%f,%f,%f,%f,%f,%f,%u", &cfg.w_centroid, &cfg.w_central, &cfg.w_position, &cfg.w_salience,
               &cfg.w_dense, &cfg.mmr_lambda, &cfg.min_tokens);
    }
    char tmpdir[4096];
    folio_store_t *s = NULL;
    folio_store_reader_t *r = NULL;
    folio_status_t st = eval_prepare("summarize", data, memory, &argc, &argv, tmpdir, sizeof tmpdir, &s, &r);
    if (st == FOLIO_EOF) { eval_finish(tmpdir, &s, &r); return FOLIO_EXIT_OK; } /* rank > 0 under mpirun */
    FILE *df = NULL;
    if (st == FOLIO_OK && details && !(df = fopen(details, "w"))) {
        fprintf(stderr, "folio eval summarize: cannot write --details '%s': %m\n", details);
        st = FOLIO_ERR_IO;
    }
    folio_eval_sum_t res = {0};
    if (st == FOLIO_OK) st = folio_eval_summarize(data, s, r, &cfg, cfg.max_words, df, &res);
    if (df && fclose(df) != 0 && st == FOLIO_OK) st = FOLIO_ERR_IO;
    if (st == FOLIO_OK)
        printf("{\"rouge1\":%.2f,\"rouge2\":%.2f,\"rougeLsum\":%.2f,\"docs\":%llu}\n", res.rouge1, res.rouge2,
               res.rougeLsum, (unsigned long long)res.docs);
    else
        fprintf(stderr, "folio eval summarize: failed: %s\n", folio_status_str(st));
    if (st == FOLIO_OK && !memory && res.from_store < res.docs)
        fprintf(stderr, "folio eval summarize: %llu of %llu rows were not in the store (analyzed in memory)\n",
                (unsigned long long)(res.docs - res.from_store), (unsigned long long)res.docs);
    eval_finish(tmpdir, &s, &r);
    return st == FOLIO_OK ? FOLIO_EXIT_OK : fail_status(st);
}

static const char *const EVAL_QA_HELP =
    "usage: folio eval qa --data F.jsonl [--top K] [--method folio|bm25] [--details FILE] [--memory]\n"
    "\n"
    "Asks every question of every row {\"id\",\"title\",\"text\",\"questions\":[{\"question\",\n"
    "\"answers\"}]} within its own document and prints\n"
    "{\"hit@1\":..,\"hit@5\":..,\"hit@10\":..,\"mrr@10\":..,\"questions\":N} (x 100).  A hit at\n"
    "k: the union of the top-k answer spans (each counted with its first 1,000 bytes)\n"
    "covers at least half of the bytes of some occurrence of a gold answer.\n"
    "\n"
    "  --data F       the data set (JSONL)\n"
    "  --top K        answers written per question to --details (default 10)\n"
    "  --method M     folio (default, fused) or bm25 (plain BM25 over sentences)\n"
    "  --details F    one JSON line per question: {\"id\",\"question\",\"answers\":\n"
    "                 [{\"start\",\"end\"}...] in rank order, \"hit_rank\"}\n"
    "  --memory       analyze the rows in memory instead of a temporary store\n";

int cmd_eval_qa(int argc, char **argv)
{
    const char *data = NULL, *details = NULL;
    bool memory = false;
    long top = 10;
    folio_ask_cfg_t cfg;
    folio_ask_cfg_default(&cfg);
    static const struct option opts[] = {
        {"data", required_argument, 0, 'D'}, {"top", required_argument, 0, 'k'},
        {"method", required_argument, 0, 'M'}, {"details", required_argument, 0, 'x'},
        {"memory", no_argument, 0, 'm'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'D': data = optarg; break;
        case 'k':
            if (!cli_parse_long(optarg, 1, 1000, &top))
                return cli_usage_error("eval qa", "--top needs a number from 1 to 1000, not '%s'", optarg);
            break;
        case 'M':
            if (!strcmp(optarg, "folio")) cfg.method = FOLIO_ASK_FOLIO;
            else if (!strcmp(optarg, "bm25")) cfg.method = FOLIO_ASK_BM25;
            else return cli_usage_error("eval qa", "--method must be folio or bm25, not '%s'", optarg);
            break;
        case 'x': details = optarg; break;
        case 'm': memory = true; break;
        case 'h': fputs(EVAL_QA_HELP, stdout); return FOLIO_EXIT_OK;
        default: return cli_usage_error("eval qa", "unknown option");
        }
    }
    if (!data) return cli_usage_error("eval qa", "--data F.jsonl is required");
    if (optind < argc) return cli_usage_error("eval qa", "unexpected argument '%s'", argv[optind]);
    const char *e;
    if ((e = getenv("FOLIO_ASK_W"))) sscanf(e, "%f,%f,%f,%u", &cfg.w_dense, &cfg.w_context, &cfg.k1, &cfg.rrf_k);
    char tmpdir[4096];
    folio_store_t *s = NULL;
    folio_store_reader_t *r = NULL;
    folio_status_t st = eval_prepare("qa", data, memory, &argc, &argv, tmpdir, sizeof tmpdir, &s, &r);
    if (st == FOLIO_EOF) { eval_finish(tmpdir, &s, &r); return FOLIO_EXIT_OK; } /* rank > 0 under mpirun */
    FILE *df = NULL;
    if (st == FOLIO_OK && details && !(df = fopen(details, "w"))) {
        fprintf(stderr, "folio eval qa: cannot write --details '%s': %m\n", details);
        st = FOLIO_ERR_IO;
    }
    folio_eval_qa_t res = {0};
    if (st == FOLIO_OK) st = folio_eval_qa(data, s, r, &cfg, (uint32_t)top, df, &res);
    if (df && fclose(df) != 0 && st == FOLIO_OK) st = FOLIO_ERR_IO;
    if (st == FOLIO_OK)
        printf("{\"hit@1\":%.2f,\"hit@5\":%.2f,\"hit@10\":%.2f,\"mrr@10\":%.2f,\"questions\":%llu}\n", res.hit1,
               res.hit5, res.hit10, res.mrr10, (unsigned long long)res.questions);
    else
        fprintf(stderr, "folio eval qa: failed: %s\n", folio_status_str(st));
    eval_finish(tmpdir, &s, &r);
    return st == FOLIO_OK ? FOLIO_EXIT_OK : fail_status(st);
}
