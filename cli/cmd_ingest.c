/* cli/cmd_ingest.c — `folio ingest`: parse options, start MPI, run the
 * pipeline, print the counters as the last stdout line. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../pipeline/pipeline.h"

static const char *const INGEST_HELP =
    "usage: folio ingest [--db P] [--backend auto|cpu|cuda] [--pattern SPEC]\n"
    "                    [--threads N] [--writes map|buffer] [--progress|--quiet] INPUT...\n"
    "\n"
    "Reads documents into the store: tokenizes them, splits sentences and\n"
    "sections, computes sparse-attention vectors and salience, and commits each\n"
    "document atomically with its done-marker.  Re-running the same command\n"
    "commits nothing new; a killed run resumes where it stopped.\n"
    "\n"
    "INPUT: a text file (.txt, .md, ...), a .jsonl file ({\"id\",\"title\",\"text\"}\n"
    "per line; \"contents\" is accepted for \"text\"), or a directory (recursive,\n"
    "hidden entries skipped).  Document ids come from JSONL or the relative path.\n"
    "\n"
    "options:\n"
    "  --db P            store directory (default $FOLIO_DB, else ./folio.lmdb)\n"
    "  --backend B       auto (GPU if present, else CPU), cpu, or cuda (default auto)\n"
    "  --pattern SPEC    attention pattern, e.g. 'hier+topk' (default) or\n"
    "                    'window=256,block=64,group=64,topk=8,layers=2' or 'budget=512'\n"
    "  --threads N       CPU threads per rank (default: the node's cores shared among\n"
    "                    its ranks); on a GPU, short documents share the device\n"
    "                    min(N, 6) at a time (one CUDA stream each: more contend for\n"
    "                    the driver and the cores than the device gains)\n"
    "  --writes W        how the store's single writer writes: map (default: pages\n"
    "                    written in place in the file's map, least memory) or buffer\n"
    "                    (each commit's pages built in memory and written at commit,\n"
    "                    rank 0 holds ~60 MB more: commits were ~40 % faster on a\n"
    "                    2-core VM, ~10 % slower on the 16-core GPU hosts measured)\n"
    "  --progress        progress line on stderr even when it is not a terminal\n"
    "  --quiet           no progress line and no per-document notes\n"
    "  -h, --help        this text\n"
    "\n"
    "Under mpirun (mpirun -np N folio ingest ...) rank 0 plans and writes the\n"
    "store; all ranks compute.  Rank 0 reads and analyzes the next round while\n"
    "the ranks compute one (with the threads of every rank on its node when they\n"
    "wait for it), and gives each rank a share of a round by its measured speed\n"
    "(rank 0, which also reads and commits, gets less).\n"
    "--progress ends with a 'ranks N:' line of stage times.  Last stdout line (always):\n"
    "  {\"seen\":N,\"committed\":N,\"duplicate\":N,\"empty\":N,\"rejected\":N,\"tokens\":N,\"seconds\":S}\n"
    "Exit status: 0 all documents stored, duplicate or empty; 1 any document\n"
    "rejected or the job failed; 2 usage error.\n";

static void print_counts(const folio_ingest_counts_t *c)
{
    printf("{\"seen\":%llu,\"committed\":%llu,\"duplicate\":%llu,\"empty\":%llu,"
           "\"rejected\":%llu,\"tokens\":%llu,\"seconds\":%.3f}\n",
           (unsigned long long)c->seen, (unsigned long long)c->committed,
           (unsigned long long)c->duplicate, (unsigned long long)c->empty,
           (unsigned long long)c->rejected, (unsigned long long)c->tokens, c->seconds);
    fflush(stdout);
}

/* The counters line is the last stdout line of every ingest, even one that
 * never started, so scripts can always parse it. */
static int usage_fail(int rc)
{
    folio_ingest_counts_t zero = {0};
    print_counts(&zero);
    return rc;
}

int cmd_ingest(int argc, char **argv)
{
    folio_ingest_cfg_t cfg = {0};
    cfg.db = cli_default_db();
    cfg.backend = FOLIO_BACKEND_AUTO;
    int progress = -1; /* -1: only on a terminal */
    bool quiet = false;
    static const struct option opts[] = {
        {"db", required_argument, 0, 'd'},      {"backend", required_argument, 0, 'b'},
        {"pattern", required_argument, 0, 'p'}, {"threads", required_argument, 0, 't'},
        {"progress", no_argument, 0, 'P'},      {"quiet", no_argument, 0, 'q'},
        {"writes", required_argument, 0, 'w'},  {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        long v;
        switch (c) {
        case 'd': cfg.db = optarg; break;
        case 'b':
            if (!strcmp(optarg, "auto")) cfg.backend = FOLIO_BACKEND_AUTO;
            else if (!strcmp(optarg, "cpu")) cfg.backend = FOLIO_BACKEND_CPU;
            else if (!strcmp(optarg, "cuda")) cfg.backend = FOLIO_BACKEND_CUDA;
            else return usage_fail(cli_usage_error("ingest", "--backend must be auto, cpu or cuda, not '%s'", optarg));
            break;
        case 'p': cfg.pattern = optarg; break;
        case 't':
            if (!cli_parse_long(optarg, 1, 4096, &v))
                return usage_fail(cli_usage_error("ingest", "--threads needs a number from 1 to 4096, not '%s'", optarg));
            cfg.threads = (int)v;
            break;
        case 'w':
            if (!strcmp(optarg, "map")) cfg.buffered_writes = false;
            else if (!strcmp(optarg, "buffer")) cfg.buffered_writes = true;
            else return usage_fail(cli_usage_error("ingest", "--writes must be map or buffer, not '%s'", optarg));
            break;
        case 'P': progress = 1; break;
        case 'q': quiet = true; progress = 0; break;
        case 'h': fputs(INGEST_HELP, stdout); return FOLIO_EXIT_OK;
        default: return usage_fail(cli_usage_error("ingest", "unknown option"));
        }
    }
    if (optind >= argc) return usage_fail(cli_usage_error("ingest", "no INPUT given"));

    /* The GPU's context is made while MPI starts and rank 0 plans
     * (workers.h); the worker's first CUDA call waits for it if needed. */
    folio_gpu_warmup_t *warm = NULL;
    if (cfg.backend != FOLIO_BACKEND_CPU) folio_gpu_warmup_start(&warm);
    MPI_Comm comm;
    int rank, size;
    int early = cli_mpi_start("ingest", &argc, &argv, &comm, &rank, &size);
    if (early) {
        folio_gpu_warmup_end(&warm);
        return usage_fail(early);
    }
    if (quiet) folio_log_set_level(FOLIO_LOG_WARN);
    cfg.progress = progress < 0 ? isatty(STDERR_FILENO) : progress;
    cfg.comm = comm;

    folio_ingest_counts_t counts = {0};
    folio_status_t st = folio_ingest_run(&cfg, (const char *const *)argv + optind, argc - optind, &counts);
    folio_gpu_warmup_end(&warm);
    int rc = FOLIO_EXIT_OK;
    if (st != FOLIO_OK) {
        if (rank == 0) folio_log(FOLIO_LOG_ERROR, "ingest failed: %s", folio_status_str(st));
        rc = st == FOLIO_ERR_USAGE ? FOLIO_EXIT_USAGE : FOLIO_EXIT_FAIL;
    } else if (counts.rejected > 0) {
        rc = FOLIO_EXIT_FAIL;
    }
    if (rank == 0 && cfg.progress)
        fprintf(stderr,
                "ranks %d: setup %.2fs, NCCL %.2fs, plan %.2fs (%.1f MB/s), read+analyze %.2fs (waited for %.2fs), commit %.2fs (overlapped; "
                "waited for %.2fs; map grown %llu times, %llu txns rerun), finish %.2fs (sync, close, backend ended), rank-0 compute %.3fs, exchange %.3fs "
                "(%.1f%% of compute), rank 0's share %.1f%% of the tokens (gave %llu documents, %llu tokens, away), "
                "rank 0 waited for results %.2fs, "
                "other ranks idle %.2fs, "
                "peak RSS %ld MB (incl. the store's mapped pages), peak anon RSS %ld MB\n",
                size, counts.setup_seconds, counts.nccl_seconds, counts.plan_seconds,
                counts.plan_seconds > 0 ? (double)counts.bytes / 1e6 / counts.plan_seconds : 0.0,
                counts.prepare_seconds, counts.prepare_wait_seconds,
                counts.commit_seconds, counts.commit_wait_seconds, (unsigned long long)counts.map_growths,
                (unsigned long long)counts.txn_reruns, counts.finish_seconds, counts.compute_seconds, counts.exchange_seconds,
                counts.compute_seconds > 0 ? 100.0 * counts.exchange_seconds / counts.compute_seconds : 0.0,
                counts.tokens > 0 ? 100.0 * (double)counts.rank0_tokens / (double)counts.tokens : 0.0,
                (unsigned long long)counts.donated_docs, (unsigned long long)counts.donated_tokens,
                counts.results_wait_seconds, counts.ranks_idle_seconds,
                folio_peak_rss_kb() / 1024, counts.peak_anon_kb / 1024);
    if (rank == 0) print_counts(&counts);
    cli_mpi_end(&comm, st != FOLIO_OK, rc);
    return rc;
}
