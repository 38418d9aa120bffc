/* cli/cmd_ingest.c — placeholder until its owner lands the real commands. */
#include "cli.h"
#include <stdio.h>
int cmd_ingest(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "folio: ingest: not implemented yet\n"); return FOLIO_EXIT_FAIL; }
