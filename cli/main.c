/* cli/main.c — the folio binary: dispatch to subcommands. */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FOLIO_VERSION
#define FOLIO_VERSION "dev"
#endif

static const char *const USAGE =
    "usage: folio <command> [options] [args]\n"
    "\n"
    "folio turns archives of very long documents into a searchable, summarized\n"
    "LMDB store using sparse attention, as one process or an MPI batch job.\n"
    "\n"
    "commands:\n"
    "  ingest     read files, directories or JSONL into the store (mpirun-aware)\n"
    "  summarize  extractive summary of a stored document (or --all)\n"
    "  ask        answer a question from one document or the whole store\n"
    "  stats      counts and sizes of the store\n"
    "  export     deterministic JSONL dump of the store\n"
    "  check      verify every invariant of the store (exit 1 on any fault)\n"
    "  eval       evaluate: 'eval summarize', 'eval qa', 'eval pattern'\n"
    "  bench      benchmarks: 'bench attn'\n"
    "\n"
    "Every command takes --help.  --db defaults to $FOLIO_DB, else ./folio.lmdb.\n"
    "Exit status: 0 success, 1 failure (or a document ended in error), 2 usage error.\n";

const char *cli_default_db(void)
{
    const char *e = getenv("FOLIO_DB");
    return (e && *e) ? e : "./folio.lmdb";
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "folio %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'folio %s --help'.\n", cmd);
    return FOLIO_EXIT_USAGE;
}

bool cli_parse_long(const char *s, long min, long max, long *out)
{
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max) return false;
    *out = v;
    return true;
}

int cli_mpi_start(const char *cmd, int *argc, char ***argv, MPI_Comm *comm, int *rank, int *size)
{
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "folio %s: MPI_Init failed\n", cmd);
        return FOLIO_EXIT_FAIL;
    }
    MPI_Comm_dup(MPI_COMM_WORLD, comm);
    MPI_Comm_rank(*comm, rank);
    MPI_Comm_size(*comm, size);
    if (*size > 1) folio_log_set_rank(*rank);
    const char *env_n = getenv("SLURM_STEP_NUM_TASKS");
    const char *env_src = "SLURM_STEP_NUM_TASKS";
    if (!env_n && getenv("SLURM_PROCID")) { env_n = getenv("SLURM_NTASKS"); env_src = "SLURM_NTASKS"; }
    if (!env_n) { env_n = getenv("OMPI_COMM_WORLD_SIZE"); env_src = "OMPI_COMM_WORLD_SIZE"; }
    long env_size = env_n ? strtol(env_n, NULL, 10) : 0;
    if (env_size > 1 && env_size != *size && !getenv("FOLIO_IGNORE_TASK_COUNT")) {
        if (*rank == 0)
            fprintf(stderr,
                    "folio %s: %s=%ld but MPI sees %d process(es): the launcher started "
                    "independent singletons (srun without PMI?). Use mpirun, or srun --mpi=pmix "
                    "(see cluster/README.md), or set FOLIO_IGNORE_TASK_COUNT=1 if this is intended.\n",
                    cmd, env_src, env_size, *size);
        MPI_Comm_free(comm);
        MPI_Finalize();
        return FOLIO_EXIT_USAGE;
    }
    return 0;
}

void cli_mpi_end(MPI_Comm *comm, bool failed, int rc)
{
    int size = 1;
    MPI_Comm_size(*comm, &size);
    MPI_Comm_free(comm);
    if (failed && size > 1) MPI_Abort(MPI_COMM_WORLD, rc);
    MPI_Finalize();
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(USAGE, stderr);
        return FOLIO_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(USAGE, stdout);
        return FOLIO_EXIT_OK;
    }
    if (!strcmp(cmd, "--version")) {
        printf("folio %s\n", FOLIO_VERSION);
        return FOLIO_EXIT_OK;
    }
    static const struct { const char *name; int (*fn)(int, char **); } cmds[] = {
        {"ingest", cmd_ingest}, {"summarize", cmd_summarize}, {"ask", cmd_ask},
        {"stats", cmd_stats},   {"export", cmd_export},       {"check", cmd_check},
        {"bench", cmd_bench},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(cmd, cmds[i].name)) return cmds[i].fn(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval")) {
        const char *sub = argc > 2 ? argv[2] : "";
        if (!strcmp(sub, "summarize")) return cmd_eval_summarize(argc - 2, argv + 2);
        if (!strcmp(sub, "qa")) return cmd_eval_qa(argc - 2, argv + 2);
        if (!strcmp(sub, "pattern")) return cmd_eval_pattern(argc - 2, argv + 2);
        int help = !strcmp(sub, "--help") || !strcmp(sub, "-h");
        fputs("usage: folio eval summarize|qa|pattern [options]\n"
              "  summarize  ROUGE-1/2/Lsum of summaries against references (--data F.jsonl)\n"
              "  qa         passage retrieval hit@k and MRR (--data F.jsonl)\n"
              "  pattern    per attention pattern: keys/query, fidelity vs dense, ms\n",
              help ? stdout : stderr);
        return help ? FOLIO_EXIT_OK : FOLIO_EXIT_USAGE;
    }
    if (!strcmp(cmd, "serve") || !strcmp(cmd, "query")) {
        fprintf(stderr, "folio: '%s' (the ZeroMQ service) is not built yet in this version\n", cmd);
        return FOLIO_EXIT_FAIL;
    }
    fprintf(stderr, "folio: unknown command '%s'\n\n%s", cmd, USAGE);
    return FOLIO_EXIT_USAGE;
}
