/* cli/cli.h — the subcommands of the folio binary.
 *
 * Each cmd_* takes the arguments after the subcommand name (argv[0] is the
 * subcommand itself, as getopt expects) and returns the process exit status:
 * 0 success, 1 the job failed or a document ended in error, 2 usage error. */
#ifndef FOLIO_CLI_H
#define FOLIO_CLI_H

#include <mpi.h>

#include "../common/common.h"

enum { FOLIO_EXIT_OK = 0, FOLIO_EXIT_FAIL = 1, FOLIO_EXIT_USAGE = 2 };

/* --db default: $FOLIO_DB, else ./folio.lmdb */
const char *cli_default_db(void);
/* Prints "folio <cmd>: <msg>\nTry 'folio <cmd> --help'." and returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parses a non-negative integer option value; returns false on junk. */
bool cli_parse_long(const char *s, long min, long max, long *out);

/* MPI for a command that runs as a job: MPI_Init (a singleton without
 * mpirun), a private duplicate of the world communicator, the rank as log
 * prefix, and the refusal of an srun without PMI (N singletons that each
 * believe they are alone).  Returns 0 to go on, else the exit status to
 * return (message printed, MPI finalized). */
int cli_mpi_start(const char *cmd, int *argc, char ***argv, MPI_Comm *comm, int *rank, int *size);
/* Frees comm and finalizes; when the job failed on a multi-rank run, aborts
 * the other ranks (they may wait in a collective) with exit status rc. */
void cli_mpi_end(MPI_Comm *comm, bool failed, int rc);

int cmd_ingest(int argc, char **argv);     /* cli/cmd_ingest.c */
int cmd_stats(int argc, char **argv);      /* cli/cmd_store.c  */
int cmd_export(int argc, char **argv);     /* cli/cmd_store.c  */
int cmd_check(int argc, char **argv);      /* cli/cmd_store.c  */
int cmd_summarize(int argc, char **argv);  /* cli/cmd_jobs.c   */
int cmd_ask(int argc, char **argv);        /* cli/cmd_jobs.c   */
int cmd_eval_summarize(int argc, char **argv); /* cli/cmd_jobs.c */
int cmd_eval_qa(int argc, char **argv);    /* cli/cmd_jobs.c   */
int cmd_eval_pattern(int argc, char **argv);   /* cli/cmd_attn.c */
int cmd_bench(int argc, char **argv);      /* cli/cmd_attn.c   */

#endif
